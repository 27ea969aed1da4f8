"""The CLI's commands that need no deployment: estimate, schema, emulate, providers, completion, import."""

from __future__ import annotations

import argparse
import sys

from multicloud.cli.loading import load_spec, print_json


def cmd_estimate(args: argparse.Namespace) -> int:
    from multicloud.cli.estimate import estimate_command

    return estimate_command(args, load_spec(args))


def cmd_schema(args: argparse.Namespace) -> int:
    from multicloud.settings import settings_models
    from multicloud.spec.schema import spec_schema

    print_json(spec_schema(settings_models()))
    return 0


def cmd_emulate(args: argparse.Namespace) -> int:
    import shlex
    import signal
    import threading

    from multicloud.emulators import start_emulator

    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # one clean stop, whenever they come
        signal.signal(number, lambda *_: stop.set())
    running = start_emulator(args.cloud, run=not args.no_run, host=args.host, port=args.port)
    try:
        print(f"# {running.name} emulator listening on {running.endpoint}; Ctrl-C stops it", flush=True)
        for note in running.notes:
            print(f"# {note}", flush=True)
        for key, value in running.environment.items():
            print(f"export {key}={shlex.quote(value)}", flush=True)
        stop.wait()
    finally:
        running.stop()
    return 0


def cmd_providers(args: argparse.Namespace) -> int:
    from multicloud.registry import EMULATORS_GROUP, available

    providers = available()
    emulators = available(EMULATORS_GROUP)
    if args.output == "json":
        print_json({"providers": [p.__dict__ for p in providers], "emulators": [e.__dict__ for e in emulators]})
        return 0
    print("providers:")
    for p in providers:
        print(f"  {p.name:16} {p.distribution} {p.version}  ({p.value})")
    print("emulators (multicloud emulate NAME):")
    for e in emulators or []:
        print(f"  {e.name:16} {e.distribution} {e.version}  ({e.value})")
    if not emulators:
        print("  none installed")
    return 0


def cmd_completion(args: argparse.Namespace) -> int:
    from multicloud.cli.completion import completion_script
    from multicloud.cli.main import build_parser

    sys.stdout.write(completion_script(args.shell, build_parser()))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from multicloud.cli.compose_import import import_compose

    return import_compose(args)
