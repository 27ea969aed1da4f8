"""`multicloud estimate [--target T…]`: the spec's monthly cost on each target, side by side."""

from __future__ import annotations

import argparse
from typing import Any

from multicloud.errors import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The estimate command's own options (beside -f, --var, --var-file)."""
    p.add_argument("-t", "--target", action="append", dest="targets", metavar="T",
                   help="a target to estimate (repeatable; default: every target of the spec)")
    p.add_argument("--prices", metavar="FILE",
                   help="YAML file of prices over the providers' own, per provider (e.g. aws-ecs: {vcpu_hour: 0.05})")
    p.add_argument("--egress-gib", type=_gib, default=None, metavar="N",
                   help="GiB a month each target sends to the internet (default 100)")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text", help="output format")


def _gib(text: str) -> float:
    """A non-negative amount of GiB; argparse reports anything else."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount of GiB (0 or more)")
    return value


def estimate_command(args: argparse.Namespace, spec: Any) -> int:
    """Estimate the loaded spec on the targets asked for and print the table (or JSON)."""
    import json

    from multicloud.estimate import DEFAULT_EGRESS_GIB, estimate_json, estimate_target, estimate_text
    from multicloud.pricing import price_tables
    from multicloud.spec.targets import target_spec

    names = list(dict.fromkeys(args.targets or spec.targets))
    unknown = [name for name in names if name not in spec.targets]
    if unknown or not names:
        known = ", ".join(spec.targets) or "none"
        raise UserError(f"no target {unknown[0]!r} in {args.file} (targets: {known})" if unknown
                        else f"{args.file} has no targets to estimate")
    specs = [target_spec(spec, name) for name in names]
    tables = price_tables([s.provider for s in specs], args.prices)
    missing = [s for s in specs if s.provider not in tables]
    if args.targets and missing:
        raise UserError(f"no price table for target {missing[0].target!r} (provider {missing[0].provider!r} ships "
                        "none)", hint="give its prices with --prices FILE (see docs/guide.md, Estimates)")
    egress = DEFAULT_EGRESS_GIB if args.egress_gib is None else args.egress_gib
    estimates = [estimate_target(s, tables.get(s.provider), egress_gib=egress) for s in specs]
    if args.output == "json":
        print(json.dumps(estimate_json(spec.name, estimates, egress_gib=egress), indent=2))
    else:
        print(estimate_text(spec.name, estimates, egress_gib=egress))
    return 0
