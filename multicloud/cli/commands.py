"""The CLI's command dispatch: each command loads the spec, calls the Python API and prints the result
(multicloud.cli.deploy, .running, .tools); errors are printed plainly with their exit code."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from multicloud.cli import deploy, running, tools
from multicloud.cli.loading import print_json
from multicloud.errors import MulticloudError, SpecError

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
    print_json({**report, "error": error})


HANDLERS: dict[str, Handler] = {
    "validate": deploy.cmd_validate,
    "plan": deploy.cmd_plan,
    "apply": deploy.cmd_apply,
    "destroy": deploy.cmd_destroy,
    "graph": deploy.cmd_graph,
    "estimate": tools.cmd_estimate,
    "rollback": deploy.cmd_rollback,
    "status": running.cmd_status,
    "endpoints": running.cmd_endpoints,
    "secrets": running.cmd_secrets,
    "logs": running.cmd_logs,
    "exec": running.cmd_exec,
    "schema": tools.cmd_schema,
    "emulate": tools.cmd_emulate,
    "providers": tools.cmd_providers,
    "import": tools.cmd_import,
    "completion": tools.cmd_completion,
}
