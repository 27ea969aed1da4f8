"""The CLI's commands that change or preview a deployment: validate, plan, graph, apply, destroy, rollback."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from multicloud.cli.loading import deployment_for, load_spec, print_json
from multicloud.cli.running import print_endpoints
from multicloud.errors import UserError


def cmd_validate(args: argparse.Namespace) -> int:
    from multicloud.errors import SpecError
    from multicloud.settings import target_problems

    spec = load_spec(args)
    problems = target_problems(spec)
    if problems:
        raise SpecError(problems)
    checked = ""
    if args.target:
        deployment_for(args).validate()
        checked = f"; target {args.target!r} can run it"
    if args.output == "json":
        print_json({"valid": True, "app": spec.name, "services": list(spec.services), "targets": list(spec.targets)})
    else:
        print(f"{args.file}: valid ({spec.name}: {len(spec.services)} services, "
              f"targets: {', '.join(spec.targets) or 'none'}){checked}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from multicloud.cli.quick import observed_before, recording
    from multicloud.render import plan_json, plan_text

    with recording(args) as keep:
        deployment = deployment_for(args)
        options = {"destroy": args.destroy, "services": args.services}
        _say_scope(args, deployment, destroy=args.destroy)
        if args.out:
            planned = deployment.save_plan(args.out, **options)
        else:
            planned = deployment.plan(**options, observed=observed_before(args, deployment))
        keep(deployment, getattr(args, "notes", []))
    if args.output == "json":
        print_json(plan_json(planned))
    else:
        print(plan_text(planned, verbose=args.verbose))
        if args.out:
            print(f"Saved the plan to {args.out}; `multicloud apply {args.out}` applies exactly it.")
    return 2 if args.detailed_exitcode and planned.has_changes else 0


def cmd_graph(args: argparse.Namespace) -> int:
    from multicloud.graph import render

    deployment = deployment_for(args)
    if args.desired:
        planned = deployment.desired_plan(services=args.services)
    else:
        planned = deployment.plan(services=args.services)
    print(render(planned, args.output))
    return 0


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
        deployment = deployment_for(args, concurrency=args.concurrency, health_timeout=args.health_timeout)
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
            print_json({"plan": plan_json(planned), "steps": steps})
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
            print_json({"plan": plan_json(planned), "steps": _steps_json(exc.result)})
        raise
    if quiet:
        print_json({"plan": plan_json(planned), "steps": _steps_json(result)})
    else:
        verb = "Destroy" if destroy else "Apply"
        print(f"{verb} complete: {result.changed} changed, {len(result.steps) - result.changed} already as desired.")
        if not destroy:
            print_endpoints(deployment.endpoints(), public_only=True)
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
    print(deployment_for(args).rollback(args.service))
    return 0
