"""multicloud provider for Google Cloud Run, and its emulator."""
