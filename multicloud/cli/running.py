"""The CLI's commands about what runs: status, endpoints, secrets, logs, exec."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from multicloud.cli.loading import deployment_for, print_json
from multicloud.errors import UserError


def cmd_status(args: argparse.Namespace) -> int:
    deployment = deployment_for(args)
    if args.watch is None:
        _print_status(args, deployment.status())
        return 0
    import time
    from datetime import UTC, datetime

    if not args.watch > 0:
        raise UserError(f"--watch {args.watch:g}: the interval must be more than 0 seconds")
    redraw = sys.stdout.isatty() and args.output != "json"
    try:
        while True:
            statuses = deployment.status()
            if redraw:
                sys.stdout.write("\x1b[H\x1b[2J")  # home and clear: the table redrawn in place
            if args.output != "json":
                print(f"{deployment.app} on {deployment.target} at {datetime.now(UTC):%H:%M:%S} UTC "
                      f"(every {args.watch:g}s; Ctrl-C stops)")
            _print_status(args, statuses)
            sys.stdout.flush()
            time.sleep(args.watch)
    except KeyboardInterrupt:
        return 0


def _print_status(args: argparse.Namespace, statuses: list[Any]) -> None:
    """The status table (or under -o json, one JSON document; one line each when watching)."""
    if args.output == "json":
        data = [s.__dict__ for s in statuses]
        if args.watch is None:
            print_json(data)
        else:
            print(json.dumps(data, default=str))
        return
    if not statuses:
        print("nothing deployed")
        return
    print(f"{'SERVICE':20} {'STATE':12} {'RUNNING':>8} {'HEALTHY':>8}  DETAIL")
    for s in statuses:
        running, healthy = f"{s.running}/{s.desired}", f"{s.healthy}/{s.desired}"
        print(f"{s.service:20} {s.state:12} {running:>8} {healthy:>8}  {s.detail}")


def cmd_endpoints(args: argparse.Namespace) -> int:
    endpoints = deployment_for(args).endpoints()
    if args.output == "json":
        print_json([e.__dict__ for e in endpoints])
    else:
        print_endpoints(endpoints, public_only=False)
    return 0


def cmd_secrets(args: argparse.Namespace) -> int:
    sys.stdout.write(deployment_for(args).certificate_authority(args.name))
    return 0


def print_endpoints(endpoints: list[Any], *, public_only: bool) -> None:
    """The endpoints list (only the public ones after an apply)."""
    shown = [e for e in endpoints if e.public or not public_only]
    if not shown:
        if not public_only:
            print("no endpoints (nothing deployed, or no ports)")
        return
    print("Endpoints:")
    for e in shown:
        scope = "public" if e.public else "internal"
        at = f"; host at {e.address}" if e.address else ""
        print(f"  {e.service + '.' + e.port:24} {e.url}  ({e.protocol}, {scope}{at})")


def cmd_logs(args: argparse.Namespace) -> int:
    deployment = deployment_for(args)
    if args.service and args.service not in deployment.target_spec.services:
        known = ", ".join(deployment.target_spec.services)
        raise UserError(f"no service {args.service!r} on target {deployment.target!r} (services: {known})")
    from multicloud.logwindow import parse_since

    since = parse_since(args.since) if args.since else None
    for line in deployment.logs(args.service, follow=args.follow, tail=args.tail, since=since):
        stamp = f"{line.timestamp.isoformat(timespec='seconds')} " if line.timestamp else ""
        print(f"{line.instance} | {stamp}{line.message}", flush=args.follow)
    return 0


def cmd_exec(args: argparse.Namespace) -> int:
    from multicloud.terminal import Terminal, raw_mode, terminal_size

    deployment = deployment_for(args)
    tty = not args.no_tty and sys.stdin.isatty() and sys.stdout.isatty()
    terminal = Terminal(sys.stdin.buffer, sys.stdout.buffer, sys.stderr.buffer, tty,
                        terminal_size(sys.stdout.fileno()) if tty else None)
    sys.stdout.flush()
    with raw_mode(sys.stdin.fileno() if tty else -1, tty):
        return int(deployment.exec(args.service, args.argv, replica=args.replica, terminal=terminal))
