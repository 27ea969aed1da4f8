"""What converting one compose project keeps track of: where each compose key is, the notes about what
the spec cannot carry, the errors, and the spec locations that point back at compose lines."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from multicloud.compose.interpolate import InterpolationError, resolve, translate
from multicloud.errors import Problem
from multicloud.spec.dotenv import DotenvError, parse_dotenv
from multicloud.spec.files import MAX_SPEC_BYTES, UnreadableFileError, decode, read_limited
from multicloud.spec.messages import dotted

FieldPath = tuple[str | int, ...]
Located = tuple[str, int, int]
ESCAPED_LATER = ("environment", "command", "entrypoint")
"""The compose keys that become spec fields whose `$$` the spec itself reads as `$` (PLACEHOLDER_FIELDS)."""


class Context:
    """One conversion: compose locations in, spec locations, notes and errors out."""

    def __init__(self, at: dict[FieldPath, Located], directory: str, environ: Mapping[str, str]) -> None:
        self.at = at
        self.directory = directory
        self.environ = environ
        self.notes: list[Problem] = []
        self.errors: list[Problem] = []
        self.spec_at: dict[FieldPath, Located] = {}
        self.service: FieldPath = ()
        self.used_volumes: set[str] = set()
        self.depends: list[tuple[FieldPath, str]] = []

    def where(self, path: FieldPath) -> Located:
        """The file, line and column of a compose key, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            found = self.at.get(tuple(path[:end]))
            if found is not None:
                return found
        return next(iter(self.at.values()), ("<compose>", 1, 1))

    def note(self, path: FieldPath, why: str) -> None:
        """Record a key the spec does not carry, and why."""
        self.notes.append(Problem(*self.where(path), dotted(path), f"not carried: {why}"))

    def error(self, path: FieldPath, message: str) -> None:
        """Record a key that stops the conversion."""
        self.errors.append(Problem(*self.where(path), dotted(path), message))

    def mark(self, spec_field: FieldPath, path: FieldPath) -> None:
        """Say that a field of the current spec service came from the compose key at `path`."""
        self.spec_at[(*self.service, *spec_field)] = self.where(path)

    def text(self, path: FieldPath, value: Any) -> Any:
        """A string with compose variables rewritten as `${env.NAME}` (resolved when the spec loads)."""
        if not isinstance(value, str):
            return value
        try:
            return translate(value, keep_escapes=len(path) > 2 and path[2] in ESCAPED_LATER)
        except InterpolationError as exc:
            self.error(path, str(exc))
            return value

    def resolve(self, path: FieldPath, value: str) -> str:
        """A string with compose variables replaced by their values now (numbers and structure need them)."""
        try:
            return resolve(value, self.environ)
        except InterpolationError as exc:
            self.error(path, str(exc))
            return value

    def read_env_file(self, path: FieldPath, file: str, required: bool) -> dict[str, str]:
        """The variables of an env_file (relative to the project directory); an error at `path` if it is
        missing and required, or at its own bad line."""
        full = os.path.join(self.directory, self.resolve(path, file))
        try:
            return parse_dotenv(decode(read_limited(full, MAX_SPEC_BYTES)), self.environ)
        except FileNotFoundError:
            if required:
                self.error(path, f"env_file {file} not found")
            return {}
        except DotenvError as exc:
            self.errors.append(Problem(full, exc.line, 1, "", str(exc)))
        except UnreadableFileError as exc:
            self.errors.append(Problem(full, exc.line, exc.column, "", str(exc)))
        return {}
