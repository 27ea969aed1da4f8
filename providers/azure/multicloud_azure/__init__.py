"""multicloud provider for Azure Container Instances, and its ARM emulator."""
