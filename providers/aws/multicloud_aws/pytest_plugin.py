"""pytest plugin (entry point `pytest11`): the `aws_emulator` session fixture
(multicloud.testing.fixtures). Importing this module imports no SDK."""

from multicloud.testing.fixtures import emulator_fixture

aws_emulator = emulator_fixture("aws")
