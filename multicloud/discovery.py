"""Which spec files a command reads when -f names none: $MULTICLOUD_FILE, else multicloud.yaml or
.yml here or in the nearest parent (as compose finds compose.yaml). Imports nothing heavy: the shell
completion helper uses it on every <Tab>."""

from __future__ import annotations

import os

SPEC_NAMES = ("multicloud.yaml", "multicloud.yml")
"""The names a spec is found by when none is given, in order of preference (as compose's compose.yaml/.yml)."""


def find_spec(start: str = ".") -> str | None:
    """The spec file in `start` or the nearest of its parents (relative to `start` when below it), or None."""
    here = os.path.abspath(start)
    while True:
        for name in SPEC_NAMES:
            candidate = os.path.join(here, name)
            if os.path.isfile(candidate):
                relative = os.path.relpath(candidate, start)
                return relative if not relative.startswith(os.pardir) else candidate
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def spec_files(given: list[str] | None) -> list[str]:
    """The spec files: those given by -f, else $MULTICLOUD_FILE (several separated as in $PATH), else
    multicloud.yaml or .yml in this directory or its nearest parent; UserError if there is none."""
    found = spec_files_found(given)
    if found is None:
        from multicloud.errors import UserError

        names = " or ".join(SPEC_NAMES)
        raise UserError(f"no {names} in {os.getcwd()} or its parents; name the spec with -f FILE")
    return found


def spec_files_found(given: list[str] | None) -> list[str] | None:
    """The spec files as spec_files finds them, None when there is none."""
    if given:
        return given
    from_env = [name for name in os.environ.get("MULTICLOUD_FILE", "").split(os.pathsep) if name]
    if from_env:
        return from_env
    found = find_spec()
    return None if found is None else [found]
