"""One error tree for multicloud, grouped by what the caller does next.

- ``UserError``: fix the input (spec, target settings, command line) and run again.
- ``RetryableError``: a transient condition; the same call may succeed later.
- ``FatalError``: the operation cannot succeed as asked; a person must look.

Providers translate SDK errors into these at their boundary with ``raise ... from exc``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class MulticloudError(Exception):
    """Root of every error multicloud raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


# --- fix the input -----------------------------------------------------------------------


class UserError(MulticloudError):
    """The caller must change what they asked for."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec: where it is and what is wrong."""

    file: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class SpecError(UserError):
    """The spec file cannot be read or is not a valid spec; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        count = len(problems)
        heading = "invalid spec" if count == 1 else f"invalid spec ({count} problems)"
        super().__init__(heading + ":\n" + "\n".join(f"  {p}" for p in problems))


FieldPath = tuple[str | int, ...]
Finding = tuple[FieldPath, str]
"""Something a target cannot run: the spec field it concerns and what to do instead."""

_LEADING_PATH = re.compile(r"^((?:services|secrets|volumes|resources)(?:\.[A-Za-z0-9_-]+)*): (.+)$", re.S)


def spec_finding(message: str) -> Finding | None:
    """The finding a message is when it starts with a spec field's dotted path, else None."""
    match = _LEADING_PATH.match(message)
    return None if match is None else (tuple(match.group(1).split(".")), match.group(2))


def as_finding(item: str | Finding) -> Finding:
    """A finding from a provider: a (field path, message) pair, or text that starts with the
    field's dotted path (`services.web.replicas: ...`); other text concerns the whole spec."""
    if not isinstance(item, str):
        return item
    return spec_finding(item) or ((), item)


def _dotted(path: FieldPath) -> str:
    """services.web.ports[0], as the spec's own errors write a path."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path).lstrip(".")


class CapabilityError(UserError):
    """The target cannot run the spec as written; each finding says where and what to do instead.
    With `problems` (the findings located in the spec file) each line starts with file:line:col."""

    def __init__(
        self,
        target: str,
        provider: str,
        violations: Sequence[str | Finding],
        problems: Sequence[Problem] = (),
        *,
        hint: str | None = None,
    ) -> None:
        self.target = target
        self.provider = provider
        self.findings = [as_finding(v) for v in violations]
        self.problems = list(problems)
        self.violations = [str(p) for p in problems] or [
            f"{_dotted(path)}: {text}" if path else text for path, text in self.findings
        ]
        lines = "\n".join(f"  {v}" if self.problems else f"  - {v}" for v in self.violations)
        super().__init__(f"target {target!r} ({provider}) cannot run this spec:\n{lines}", hint=hint)


class TargetError(UserError):
    """An unknown target, a bad target setting or a missing secret value."""


class SettingsError(UserError):
    """A provider rejected target settings: `problems` holds each (field path, message);
    `field` and `detail` are the first. A dotted `field` string is split at its dots."""

    def __init__(self, field: str | FieldPath, message: str) -> None:
        path = tuple(field.split(".")) if isinstance(field, str) else field
        self.problems: list[tuple[FieldPath, str]] = [(path, message)]
        self.field = ".".join(str(p) for p in path)
        self.detail = message
        super().__init__(f"{self.field}: {message}")

    @classmethod
    def of(cls, problems: list[tuple[FieldPath, str]]) -> SettingsError:
        """One error carrying several problems, each shown on its own line."""
        error = cls(*problems[0])
        error.problems = list(problems)
        error.message = "\n".join(f"{'.'.join(str(p) for p in path)}: {text}" for path, text in problems)
        return error


class ProviderNotFoundError(UserError):
    """No installed plugin provides the requested provider name."""


# --- retry later -------------------------------------------------------------------------


class RetryableError(MulticloudError):
    """A transient failure (throttling, a busy resource, a network blip); retrying may work.
    `retry_after` (seconds) is the backend's own advice, e.g. an HTTP Retry-After header."""

    def __init__(self, message: str, *, hint: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class LockHeldError(RetryableError):
    """Another apply or destroy of the same app and target is running."""


# --- give up -----------------------------------------------------------------------------


class FatalError(MulticloudError):
    """The operation failed in a way retrying will not fix."""


class ProviderError(FatalError):
    """A provider call failed permanently; the message says what was left behind."""


class InconsistentResultError(ProviderError):
    """A provider reported success but what it left differs from what the step asked for."""


class NotFoundError(ProviderError):
    """The backend has no object of that name or id (HTTP 404 or the SDK's equivalent)."""


class PluginError(FatalError):
    """A provider plugin is installed but broken (import error, wrong type)."""


class HealthTimeoutError(FatalError):
    """A resource did not become healthy within its deadline."""


class ApplyFailedError(FatalError):
    """One or more plan steps failed; the next apply starts from what now exists."""

    def __init__(self, message: str, *, hint: str | None = None, result: Any = None) -> None:
        super().__init__(message, hint=hint)
        self.result = result


class BackendUnavailableError(FatalError):
    """The provider's backend (Docker engine, cloud endpoint) cannot be reached; see the hint.
    Not invalid input (exit 2): the spec may be fine and the network or the engine is not."""
