"""pytest plugin (entry point `pytest11`): the `azure_emulator` session fixture
(multicloud.testing.fixtures). Importing this module imports no SDK."""

from multicloud.testing.fixtures import emulator_fixture

azure_emulator = emulator_fixture("azure")
