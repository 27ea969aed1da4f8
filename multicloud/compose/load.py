"""Compose files as spec input: recognise them, merge them as compose does, convert and validate them."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from multicloud.compose.convert import Converted, convert
from multicloud.compose.interpolate import InterpolationError, project_environment
from multicloud.compose.merge import environment_as_map
from multicloud.compose.merge import merge as compose_merge
from multicloud.discovery import SPEC_NAMES
from multicloud.errors import Problem, SpecError
from multicloud.spec.loader import merge_spec_files, parse_yaml, read_spec_text, source_map, validate_data
from multicloud.spec.models import Spec
from multicloud.spec.overrides import locate_all
from multicloud.spec.variables import Variables

FieldPath = tuple[str | int, ...]
Located = tuple[str, int, int]
_COMPOSE_NAME = re.compile(r"^(docker-)?compose([.-].*)?\.ya?ml$")
_COMPOSE_ONLY = {"environment", "env_file", "expose", "deploy", "restart", "profiles", "container_name", "networks"}


def is_compose(file: str, document: Any) -> bool:
    """Whether a parsed file is a compose file: named like one, or `services:` shaped like compose's
    (no `targets`/`vars`, and no `name` or a service with a key or port only compose writes)."""
    if not isinstance(document, dict) or not isinstance(document.get("services"), dict):
        return False
    if "targets" in document or "vars" in document:
        return False
    if _COMPOSE_NAME.match(os.path.basename(file)):
        return True
    services = [s for s in document["services"].values() if isinstance(s, dict)]
    compose_keys = any(_COMPOSE_ONLY & set(s) or any(not isinstance(p, dict) for p in s.get("ports") or [])
                       for s in services)
    return "name" not in document or compose_keys or any(k.startswith("x-") for k in document)


def read_project(files: Sequence[str], *, profiles: Sequence[str] = (),
                 environ: Mapping[str, str] | None = None) -> Converted:
    """Read, merge and convert compose files (the project directory is the first file's); SpecError
    with every error found (conversion notes are in the result)."""
    directory = os.path.dirname(os.path.abspath(files[0]))
    try:
        env = project_environment(directory, environ)
    except InterpolationError as exc:
        raise SpecError([Problem(files[0], 1, 1, "", str(exc))]) from None
    active = list(profiles) or [p for p in env.get("COMPOSE_PROFILES", "").split(",") if p]
    document: Any = None
    at: dict[FieldPath, Located] = {}
    for file in files:
        data, marks = parse_yaml(read_spec_text(file), file)
        if not isinstance(data, dict):
            raise SpecError([Problem(file, 1, 1, "", "a compose file is a mapping (services, volumes...)")])
        located = locate_all(file, marks)
        environment_as_map(data, located)
        document, at = (data, located) if document is None else compose_merge(document, at, data, located)
    converted = convert(document, at, directory, env, active)
    if converted.errors:
        raise SpecError(sorted(converted.errors, key=lambda p: (p.file, p.line, p.column)))
    return converted


def load_files(files: Sequence[str], variables: Variables | None = None, *, profiles: Sequence[str] = ()
               ) -> tuple[Spec, list[Problem]] | None:
    """The spec of files that begin with compose files (later spec files override the converted project,
    e.g. to add targets) and the notes on what was not carried; None when the first file is no compose file."""
    first = files[0]
    if os.path.basename(first) in SPEC_NAMES:  # a spec by its name: not read twice
        return None
    data, _ = parse_yaml(read_spec_text(first), first)
    if not is_compose(first, data):
        return None
    compose_files = [first]
    for file in files[1:]:
        document, _ = parse_yaml(read_spec_text(file), file)
        if not is_compose(file, document):
            break
        compose_files.append(file)
    converted = read_project(compose_files, profiles=profiles)
    spec_data, at = merge_spec_files(files[len(compose_files):], converted.data, converted.at)
    return validate_data(spec_data, source_map(first, at), variables), converted.notes
