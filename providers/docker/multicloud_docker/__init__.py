"""multicloud's Docker provider (`docker`). Importing this package does not import the docker SDK."""

__all__ = ["DockerProvider"]


def __getattr__(name: str) -> object:
    """Load DockerProvider on first access, keeping `import multicloud_docker` cheap."""
    if name == "DockerProvider":
        from multicloud_docker.provider import DockerProvider

        return DockerProvider
    raise AttributeError(name)
