"""pytest plugin (entry point `pytest11`): the `gcp_emulator` session fixture
(multicloud.testing.fixtures). Importing this module imports no SDK."""

from multicloud.testing.fixtures import emulator_fixture

gcp_emulator = emulator_fixture("gcp")
