"""Compose files as input: `multicloud import compose` and `-f compose.yaml` (see docs/guide.md)."""

from multicloud.compose.convert import Converted, convert
from multicloud.compose.load import is_compose, load_files, read_project

__all__ = ["Converted", "convert", "is_compose", "load_files", "read_project"]
