"""What every CLI command starts from: the spec and the deployment its arguments name, and JSON output."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from multicloud.errors import UserError


def load_spec(args: argparse.Namespace) -> Any:
    """The spec named by --file (or found), with the variables given by --var and --var-file."""
    from multicloud.discovery import spec_files
    from multicloud.spec import load
    from multicloud.spec.variables import Variables, parse_assignment

    args.files = spec_files(args.files)
    args.file = " + ".join(args.files)
    values = dict(parse_assignment(text) for text in args.var)
    variables = Variables(values=values, files=args.var_file)
    from multicloud.compose import load_files

    from_compose = load_files(args.files, variables, profiles=getattr(args, "profile", None) or ())
    if from_compose is None:
        return load(args.files, variables)
    spec, notes = from_compose
    args.notes = [str(note) for note in notes]
    for note in args.notes:
        print(f"note: {note}", file=sys.stderr)
    return spec


def deployment_for(args: argparse.Namespace, **options: Any) -> Any:
    """The Deployment of the spec and target the arguments name (the spec's only target when none is)."""
    from multicloud.api import Deployment

    spec = load_spec(args)
    target = args.target
    if target is None:
        if len(spec.targets) != 1:
            known = ", ".join(spec.targets) or "none"
            raise UserError(f"say which target with --target (targets in {args.file}: {known})")
        target = next(iter(spec.targets))
    return Deployment(spec, target, **options)


def print_json(data: Any) -> None:
    """Print data as indented JSON (what a script parses)."""
    print(json.dumps(data, indent=2, default=str))
