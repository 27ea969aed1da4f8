"""`multicloud import compose [FILE…]`: write a multicloud.yaml from compose files, saying what was not carried."""

from __future__ import annotations

import argparse
import copy
import os
import sys

from multicloud.errors import UserError

COMPOSE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
OVERRIDE_NAMES = ("compose.override.yaml", "compose.override.yml",
                  "docker-compose.override.yaml", "docker-compose.override.yml")
HEADER = "# Written by `multicloud import compose` from {files}.\n# Not carried: {count} key(s), listed when it ran.\n"


def compose_files(given: list[str]) -> list[str]:
    """The compose files: those given, else compose.yaml (or its other names) here and its override file,
    as compose finds them; UserError when there is none."""
    if given:
        return given
    for name in COMPOSE_NAMES:
        if os.path.isfile(name):
            override = next((o for o in OVERRIDE_NAMES if os.path.isfile(o)), None)
            return [name, override] if override else [name]
    raise UserError(f"no {' or '.join(COMPOSE_NAMES)} in {os.getcwd()}; name the compose files")


def import_compose(args: argparse.Namespace) -> int:
    """Convert, validate, then write the spec (never half a file: nothing is written when it does not
    validate, and an existing spec is kept unless --force); print each key not carried."""
    import yaml

    from multicloud.compose import read_project
    from multicloud.spec.loader import source_map, validate_data

    files = compose_files(args.files)
    converted = read_project(files, profiles=args.profile or ())
    first = files[0]
    spec = validate_data(copy.deepcopy(converted.data), source_map(first, converted.at), None)
    for note in converted.notes:
        print(f"note: {note}", file=sys.stderr)
    text = HEADER.format(files=", ".join(files), count=len(converted.notes))
    text += yaml.safe_dump(converted.data, sort_keys=False, default_flow_style=False, width=120)
    out = args.out or os.path.join(os.path.dirname(first), "multicloud.yaml")
    if out == "-":
        sys.stdout.write(text)
        return 0
    if os.path.exists(out) and not args.force:
        raise UserError(f"{out} exists; give --force to replace it, or --out FILE")
    temporary = f"{out}.tmp-{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, out)
    print(f"wrote {out}: {spec.name}, {len(spec.services)} services, target local (docker); "
          f"{len(converted.notes)} key(s) not carried", file=sys.stderr)
    return 0
