"""Plans and applies with nothing to change, answered from the compiled target.

The last `plan` or `apply` of a target keeps, in the compiled-form cache (multicloud.compiled), the
desired resources it rendered (secrets as digests), with every input it read: spec and var files,
`.env`, the environment variables it looked up (secret sources among them), build contexts,
generated secrets and the code. While all of them read the same, the next plan or apply of that
target compares those resources with a fresh observe, run by the provider's light observer
(SupportsQuickObserve), and loads nothing else: no pydantic, no spec models, no SDK. When that plan
has anything to do, or a resource it leaves alone was not seen healthy, the full path runs instead
(so errors, waits and applies are exactly the usual ones).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from multicloud import inputs
from multicloud.compiled import Cache
from multicloud.planner import Action, Plan
from multicloud.resources import Resource, from_jsonable, to_jsonable

COMMANDS = ("plan", "apply")


@dataclass(frozen=True)
class CompiledTarget:
    """What a no-op plan of one target needs: the app, its desired resources, and how to observe it."""

    app: str
    target: str
    observer: str
    """`module:function` of the provider's light observer."""
    observer_data: dict[str, Any]
    desired: tuple[Resource, ...]
    """Stamped with the target, secrets as digests, payloads dropped."""
    notes: tuple[str, ...] = ()
    """What loading the spec noted (a compose file's unsupported keys), printed again."""
    valid_until: float | None = None
    """When a generated TLS certificate is due to be re-issued (seconds since the epoch): the full path runs then."""


def _eligible(args: argparse.Namespace) -> bool:
    """A whole-target plan or apply (no services named, no plan file, not a destroy)."""
    return (
        args.command in COMMANDS
        and not args.services
        and not getattr(args, "destroy", False)
        and not getattr(args, "out", None)
    )


def _entry(cache: Cache, args: argparse.Namespace, files: list[str]) -> str:
    """The cache entry of this target as these arguments name it."""
    from multicloud.lock import state_dir

    return cache.name(
        "target", os.getcwd(), files, args.var, [os.path.abspath(f) for f in args.var_file],
        sorted(getattr(args, "profile", None) or ()), args.target, str(state_dir()),
    )


def answer(args: argparse.Namespace) -> int | None:
    """Print the plan (or run the apply) of a target with nothing to change, from its compiled form, and
    return the exit code; None when the full path must run (no valid entry, or anything to do)."""
    if not _eligible(args):
        return None
    cache = Cache.open()
    if cache is None:
        return None
    from multicloud.discovery import spec_files_found

    files = spec_files_found(args.files)
    if files is None:
        return None
    compiled = cache.get(_entry(cache, args, files))
    if not isinstance(compiled, CompiledTarget):
        return None
    if compiled.valid_until is not None and time.time() >= compiled.valid_until:
        return None
    planned, observed = _plan(compiled)
    if planned is None:
        args.observed = compiled, observed  # for the full path (observed_before)
        return None
    for note in compiled.notes:
        print(f"note: {note}", file=sys.stderr)
    from multicloud.render import plan_json, plan_text

    apply = args.command == "apply"
    if apply and args.output != "json":
        print(plan_text(planned))
    if apply and planned.changes:  # the progress display of an apply with nothing to wait for
        from multicloud.cli.deploy import progress_display, progress_stream
        from multicloud.cli.progress import choose_mode

        quiet = args.output == "json"
        if choose_mode(args.progress, progress_stream(quiet)) != "plain":  # plain lines: none without events
            with progress_display(args, planned, quiet=quiet):
                pass
    if args.output == "json":  # as the commands print it
        print(json.dumps({"plan": plan_json(planned), "steps": []} if apply else plan_json(planned),
                         indent=2, default=str))
    elif not apply:
        print(plan_text(planned, verbose=args.verbose))
    return 0


def _plan(compiled: CompiledTarget) -> tuple[Plan | None, list[Resource]]:
    """What exists now, with the plan against it if that changes nothing and leaves only resources
    seen healthy (else None)."""
    from multicloud.ownership import refuse_foreign
    from multicloud.planner import plan

    module, _, name = compiled.observer.partition(":")
    observe: Callable[[dict[str, Any], str], list[Resource]] = getattr(importlib.import_module(module), name)
    observed = observe(compiled.observer_data, compiled.app)
    refuse_foreign(compiled.app, compiled.target, observed)
    planned = plan(compiled.app, compiled.target, list(compiled.desired), observed)
    waiting = [c for c in planned.changes if c.action is Action.NOOP and not (c.before and c.before.healthy)]
    return (None if planned.has_changes or waiting else planned), observed


def observed_before(args: argparse.Namespace, deployment: Any) -> list[Resource] | None:
    """What `answer` observed of this deployment's app a moment ago, when its provider observes with the
    same light observer and data (so its observe would read the same); else None (observe again)."""
    from multicloud.contract import SupportsQuickObserve

    found: tuple[CompiledTarget, list[Resource]] | None = getattr(args, "observed", None)
    if found is None:
        return None
    compiled, observed = found
    provider = deployment.provider
    if (compiled.app, compiled.target) != (deployment.app, deployment.target):
        return None
    if not isinstance(provider, SupportsQuickObserve) or provider.observer() != (compiled.observer,
                                                                                 compiled.observer_data):
        return None
    return observed


@contextmanager
def recording(args: argparse.Namespace) -> Iterator[Callable[[Any, list[str]], None]]:
    """Record what the full path of a plan or apply reads; yield `keep(deployment, notes)`, which
    compiles the target it planned into the cache (a no-op when the command cannot be answered so)."""
    cache = Cache.open() if _eligible(args) else None
    if cache is None:
        yield lambda deployment, notes: None
        return
    with inputs.recording(cache.key) as recorder:

        def keep(deployment: Any, notes: list[str]) -> None:
            made = _compiled(deployment, notes)
            if made is not None:
                compiled, code = made
                cache.put(_entry(cache, args, args.files), recorder.inputs, compiled, code=(code,))

        yield keep


def _compiled(deployment: Any, notes: list[str]) -> tuple[CompiledTarget, str] | None:
    """The compiled form of the target a Deployment last planned, with its provider's package folder;
    None when its provider has no light observer or keeps generated secrets itself."""
    from multicloud.contract import SupportsQuickObserve
    from multicloud.generated import SupportsSecretStore

    provider, made = deployment.provider, deployment.last_plan
    if made is None or not isinstance(provider, SupportsQuickObserve) or isinstance(provider, SupportsSecretStore):
        return None
    observer, data = provider.observer()
    desired = tuple(
        dataclasses.replace(r, properties=from_jsonable(to_jsonable(r.properties)), payload=None)
        for r in made.desired
    )
    package = sys.modules[type(provider).__module__.partition(".")[0]]
    code = os.path.dirname(os.path.abspath(package.__file__ or ""))
    due = deployment.renewal_due
    compiled = CompiledTarget(deployment.app, deployment.target, observer, data, desired, tuple(notes),
                              valid_until=None if due is None else due.timestamp())
    return compiled, code
