"""End-to-end tests of the IoT backend on the local Docker engine."""
