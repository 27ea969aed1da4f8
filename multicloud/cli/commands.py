"""The CLI's commands: each loads the spec, calls the Python API and prints the result."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from multicloud.errors import MulticloudError, SpecError, UserError

Handler = Callable[[argparse.Namespace], int]


def run(args: argparse.Namespace) -> int:
    """Dispatch to a command; print errors plainly and return the exit code."""
    handler = HANDLERS[args.command]
    try:
        from multicloud.cli import quick

        answered = quick.answer(args)
        if answered is not None:
            return answered
        return handler(args)
    except MulticloudError as exc:
        _error(args, str(exc), exc)
        detailed = getattr(args, "detailed_exitcode", False)
        return 1 if detailed else exc.exit_code
    except KeyboardInterrupt:
        changing = args.command in ("apply", "destroy", "rollback")
        _error(args, "interrupted; the next apply resumes from what exists now" if changing else "interrupted")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if os.environ.get("MULTICLOUD_DEBUG"):
            raise
        _error(args, f"internal error: {type(exc).__name__}: {exc} (set MULTICLOUD_DEBUG=1 for the traceback)")
        return 1


def _error(args: argparse.Namespace, message: str, exc: MulticloudError | None = None) -> None:
    """Print an error on stderr; under `-o json` also as JSON on stdout (what a script parses)."""
    print(f"error: {message}", file=sys.stderr)
    if getattr(args, "output", "text") != "json":
        return
    error: dict[str, Any] = {"kind": type(exc).__name__ if exc else "InternalError", "message": message}
    if exc is not None:
        error["message"], error["hint"] = exc.message, exc.hint
        problems = getattr(exc, "problems", None)
        if isinstance(exc, SpecError):
            error["problems"] = [p.__dict__ for p in exc.problems]
        elif problems:
            error["problems"] = [{"field": ".".join(map(str, f)), "message": m} for f, m in problems]
    report: dict[str, Any] = {"valid": False} if args.command == "validate" else {}
    _print_json({**report, "error": error})


def _load(args: argparse.Namespace) -> Any:
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


def _deployment(args: argparse.Namespace, **options: Any) -> Any:
    from multicloud.api import Deployment

    spec = _load(args)
    target = args.target
    if target is None:
        if len(spec.targets) != 1:
            known = ", ".join(spec.targets) or "none"
            raise UserError(f"say which target with --target (targets in {args.file}: {known})")
        target = next(iter(spec.targets))
    return Deployment(spec, target, **options)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def cmd_validate(args: argparse.Namespace) -> int:
    from multicloud.errors import SpecError
    from multicloud.settings import target_problems

    spec = _load(args)
    problems = target_problems(spec)
    if problems:
        raise SpecError(problems)
    checked = ""
    if args.target:
        _deployment(args).validate()
        checked = f"; target {args.target!r} can run it"
    if args.output == "json":
        _print_json({"valid": True, "app": spec.name, "services": list(spec.services), "targets": list(spec.targets)})
    else:
        print(f"{args.file}: valid ({spec.name}: {len(spec.services)} services, "
              f"targets: {', '.join(spec.targets) or 'none'}){checked}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from multicloud.cli.quick import observed_before, recording
    from multicloud.render import plan_json, plan_text

    with recording(args) as keep:
        deployment = _deployment(args)
        options = {"destroy": args.destroy, "services": args.services}
        _say_scope(args, deployment, destroy=args.destroy)
        if args.out:
            planned = deployment.save_plan(args.out, **options)
        else:
            planned = deployment.plan(**options, observed=observed_before(args, deployment))
        keep(deployment, getattr(args, "notes", []))
    if args.output == "json":
        _print_json(plan_json(planned))
    else:
        print(plan_text(planned, verbose=args.verbose))
        if args.out:
            print(f"Saved the plan to {args.out}; `multicloud apply {args.out}` applies exactly it.")
    return 2 if args.detailed_exitcode and planned.has_changes else 0


def cmd_graph(args: argparse.Namespace) -> int:
    from multicloud.graph import render

    deployment = _deployment(args)
    if args.desired:
        planned = deployment.desired_plan(services=args.services)
    else:
        planned = deployment.plan(services=args.services)
    print(render(planned, args.output))
    return 0


def cmd_estimate(args: argparse.Namespace) -> int:
    from multicloud.cli.estimate import estimate_command

    return estimate_command(args, _load(args))


def _say_scope(args: argparse.Namespace, deployment: Any, *, destroy: bool) -> None:
    """Under text output, say which services a targeted plan takes in besides those named."""
    if args.services:
        described = deployment.scope(args.services, destroy=destroy).describe()
        if args.output != "json":
            print(described)


def _saved_plan_file(args: argparse.Namespace) -> tuple[str, Any] | None:
    """The plan file `apply FILE` names (its one argument, an existing file) and its content, else None."""
    if len(args.services) == 1 and os.path.isfile(args.services[0]):
        from multicloud.saved_plans import read

        path = str(args.services[0])
        saved = read(path)
        args.target = args.target or saved.target
        return path, saved
    return None


def cmd_apply(args: argparse.Namespace, *, destroy: bool = False) -> int:
    from multicloud.cli.quick import observed_before, recording
    from multicloud.errors import ApplyFailedError
    from multicloud.render import plan_json, plan_text

    quiet = args.output == "json"
    saved = None if destroy else _saved_plan_file(args)
    with recording(args) as keep:
        deployment = _deployment(args, concurrency=args.concurrency, health_timeout=args.health_timeout)
        if saved is not None:
            planned, destroy = deployment.saved_plan(saved[0]), saved[1].destroy
        else:
            _say_scope(args, deployment, destroy=destroy)
            planned = deployment.plan(destroy=destroy, volumes=getattr(args, "volumes", False), services=args.services,
                                      observed=observed_before(args, deployment))
            keep(deployment, getattr(args, "notes", []))
    if not quiet:
        print(plan_text(planned))
    if not planned.has_changes:
        steps: list[dict[str, Any]] = []
        if not destroy and planned.changes:  # nothing to change, but an interrupted apply may have left it starting
            with progress_display(args, planned, quiet) as sink:
                deployment.on_event = sink
                steps = _steps_json(deployment.apply(planned))
        if quiet:
            _print_json({"plan": plan_json(planned), "steps": steps})
        return 0
    if not args.yes and saved is None:  # a saved plan was reviewed when it was made (as terraform's)
        _confirm("destroy" if destroy else "apply")
    try:
        with progress_display(args, planned, quiet) as sink:
            deployment.on_event = sink
            if saved is not None:
                result = deployment.apply_saved(saved[0])
            elif destroy:
                result = deployment.destroy(planned, services=args.services)
            else:
                result = deployment.apply(planned)
    except ApplyFailedError as exc:
        if quiet and exc.result is not None:
            _print_json({"plan": plan_json(planned), "steps": _steps_json(exc.result)})
        raise
    if quiet:
        _print_json({"plan": plan_json(planned), "steps": _steps_json(result)})
    else:
        verb = "Destroy" if destroy else "Apply"
        print(f"{verb} complete: {result.changed} changed, {len(result.steps) - result.changed} already as desired.")
        if not destroy:
            _print_endpoints(deployment.endpoints(), public_only=True)
    return 0


def progress_display(args: argparse.Namespace, planned: Any, quiet: bool) -> Any:
    """The progress display of an apply: on progress_stream(quiet); the plan's acting resources listed
    from the start."""
    from multicloud.cli.progress import progress
    from multicloud.planner import Action

    acting = [c.key for c in planned.changes if c.action is not Action.NOOP]
    title = f"{planned.app} on {planned.target}"
    return progress(progress_stream(quiet), args.progress, list(dict.fromkeys(acting)), title)


def progress_stream(quiet: bool) -> Any:
    """Where an apply shows its progress: stderr under -o json (stdout holds the result), else stdout."""
    return sys.stderr if quiet else sys.stdout


def _steps_json(result: Any) -> list[dict[str, Any]]:
    return [
        {"resource": s.key, "action": s.action.value, "outcome": s.outcome, "attempts": s.attempts,
         "seconds": round(s.seconds, 3), "error": str(s.error) if s.error else None}
        for s in result.steps
    ]


def _confirm(verb: str) -> None:
    if not sys.stdin.isatty():
        raise UserError(f"{verb} needs confirmation: pass --yes (standard input is not a terminal)")
    try:
        answer = input(f"Do you want to {verb} these changes? Only 'yes' is accepted: ")
    except EOFError:  # Ctrl-D
        print(file=sys.stderr)
        raise UserError(f"{verb} aborted (end of input); nothing was changed") from None
    if answer.strip() != "yes":
        raise UserError(f"{verb} cancelled; nothing was changed")


def cmd_destroy(args: argparse.Namespace) -> int:
    return cmd_apply(args, destroy=True)


def cmd_rollback(args: argparse.Namespace) -> int:
    print(_deployment(args).rollback(args.service))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    deployment = _deployment(args)
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
            _print_json(data)
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
    endpoints = _deployment(args).endpoints()
    if args.output == "json":
        _print_json([e.__dict__ for e in endpoints])
    else:
        _print_endpoints(endpoints, public_only=False)
    return 0


def cmd_secrets(args: argparse.Namespace) -> int:
    sys.stdout.write(_deployment(args).certificate_authority(args.name))
    return 0


def _print_endpoints(endpoints: list[Any], *, public_only: bool) -> None:
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
    deployment = _deployment(args)
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

    deployment = _deployment(args)
    tty = not args.no_tty and sys.stdin.isatty() and sys.stdout.isatty()
    terminal = Terminal(sys.stdin.buffer, sys.stdout.buffer, sys.stderr.buffer, tty,
                        terminal_size(sys.stdout.fileno()) if tty else None)
    sys.stdout.flush()
    with raw_mode(sys.stdin.fileno() if tty else -1, tty):
        return int(deployment.exec(args.service, args.argv, replica=args.replica, terminal=terminal))


def cmd_schema(args: argparse.Namespace) -> int:
    from multicloud.settings import settings_models
    from multicloud.spec.schema import spec_schema

    _print_json(spec_schema(settings_models()))
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
        _print_json({"providers": [p.__dict__ for p in providers], "emulators": [e.__dict__ for e in emulators]})
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


HANDLERS: dict[str, Handler] = {
    "validate": cmd_validate,
    "plan": cmd_plan,
    "apply": cmd_apply,
    "destroy": cmd_destroy,
    "graph": cmd_graph,
    "estimate": cmd_estimate,
    "rollback": cmd_rollback,
    "status": cmd_status,
    "endpoints": cmd_endpoints,
    "secrets": cmd_secrets,
    "logs": cmd_logs,
    "exec": cmd_exec,
    "schema": cmd_schema,
    "emulate": cmd_emulate,
    "providers": cmd_providers,
    "import": cmd_import,
    "completion": cmd_completion,
}
