"""One error tree for multicloud, grouped by what the caller does next.

- ``UserError``: fix the input (spec, target settings, command line) and run again.
- ``RetryableError``: a transient condition; the same call may succeed later.
- ``FatalError``: the operation cannot succeed as asked; a person must look.

Providers translate SDK errors into these at their boundary with ``raise ... from exc``.
"""

from __future__ import annotations

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


class CapabilityError(UserError):
    """The target cannot run the spec as written; each violation says what to do instead."""

    def __init__(self, target: str, provider: str, violations: list[str]) -> None:
        self.violations = violations
        lines = "\n".join(f"  - {v}" for v in violations)
        super().__init__(f"target {target!r} ({provider}) cannot run this spec:\n{lines}")


class TargetError(UserError):
    """An unknown target, a bad target setting or a missing secret value."""


FieldPath = tuple[str | int, ...]


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


class PluginError(FatalError):
    """A provider plugin is installed but broken (import error, wrong type)."""


class HealthTimeoutError(FatalError):
    """A resource did not become healthy within its deadline."""


class ApplyFailedError(FatalError):
    """One or more plan steps failed; the next apply starts from what now exists."""

    def __init__(self, message: str, *, hint: str | None = None, result: Any = None) -> None:
        super().__init__(message, hint=hint)
        self.result = result


class BackendUnavailableError(UserError):
    """The provider's backend (Docker engine, cloud endpoint) cannot be reached; see the hint."""
