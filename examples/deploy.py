"""A deploy script using multicloud's Python API: plan, show, apply, print endpoints.

Usage: python examples/deploy.py SPEC TARGET [--yes] [--destroy]
Nothing is printed by the library itself; this script decides what to show.
"""

from __future__ import annotations

import argparse
import sys

from multicloud import Deployment, MulticloudError, load
from multicloud.contract import Event
from multicloud.render import plan_text


def show(event: Event) -> None:
    """Print apply progress as it happens."""
    print(f"  [{event.elapsed:5.1f}s] {event.resource}: {event.message}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", help="path to multicloud.yaml")
    parser.add_argument("target", help="target name from the spec")
    parser.add_argument("--yes", action="store_true", help="apply without asking")
    parser.add_argument("--destroy", action="store_true", help="remove the app instead")
    args = parser.parse_args()
    try:
        deployment = Deployment(load(args.spec), args.target, on_event=show)
        planned = deployment.plan(destroy=args.destroy)
        print(plan_text(planned))
        if not planned.has_changes:
            return 0
        if not args.yes and input("apply? [yes/no] ").strip() != "yes":
            return 1
        result = deployment.destroy() if args.destroy else deployment.apply(planned)
        print(f"{result.changed} step(s) changed")
        for endpoint in deployment.endpoints():
            if endpoint.public:
                print(f"{endpoint.service}.{endpoint.port}: {endpoint.url}")
    except MulticloudError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
