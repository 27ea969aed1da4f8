"""Rules every provider's SDK error translation shares, so that a status means the same on
every target: what an HTTP status tells the caller to do, and how an unreachable backend is said.

Providers still map their SDK's exception types (that is what only they know) and call these
for the common part, raising the result `from` the SDK exception.
"""

from __future__ import annotations

from multicloud.errors import BackendUnavailableError, MulticloudError, NotFoundError, RetryableError

TOO_MANY_REQUESTS = 429


def from_status(status: int, text: str, *, retry_after: float | None = None) -> MulticloudError | None:
    """The error an HTTP status means on any backend: 429 and 5xx are RetryableError (with the
    backend's Retry-After advice), 404 is NotFoundError; None for the rest, which only the
    provider can judge (a 400 may be the spec's fault or the provider's)."""
    if status == TOO_MANY_REQUESTS or status >= 500:
        return RetryableError(text, retry_after=retry_after)
    if status == 404:
        return NotFoundError(text)
    return None


def unreachable(backend: str, doing: str, detail: object, hint: str) -> BackendUnavailableError:
    """The error for a backend that does not answer at all: `cannot reach BACKEND while DOING:
    DETAIL`, with how to start or configure it (exit 1: the input may well be fine)."""
    text = str(detail)
    text = text if len(text) <= 300 else text[:297] + "..."
    return BackendUnavailableError(f"cannot reach {backend} while {doing}: {text}", hint=hint)
