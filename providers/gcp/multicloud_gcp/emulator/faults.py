"""Google API errors (status, HTTP code, error body) and the faults tests inject into the emulator."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

# status name -> (HTTP status, gRPC code number)
CODES = {
    "INVALID_ARGUMENT": (400, 3),
    "FAILED_PRECONDITION": (400, 9),
    "OUT_OF_RANGE": (400, 11),
    "UNAUTHENTICATED": (401, 16),
    "PERMISSION_DENIED": (403, 7),
    "NOT_FOUND": (404, 5),
    "ALREADY_EXISTS": (409, 6),
    "ABORTED": (409, 10),
    "RESOURCE_EXHAUSTED": (429, 8),
    "INTERNAL": (500, 13),
    "UNIMPLEMENTED": (501, 12),
    "UNAVAILABLE": (503, 14),
    "DEADLINE_EXCEEDED": (504, 4),
}


class ApiError(Exception):
    """An error as Google APIs return it: a status, a message and optional field violations."""

    def __init__(self, status: str, message: str, violations: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        if status not in CODES:
            raise ValueError(f"unknown status {status!r}")
        self.status = status
        self.message = message
        self.violations = violations

    @property
    def http_status(self) -> int:
        """The HTTP status code REST clients see."""
        return CODES[self.status][0]

    @property
    def code(self) -> int:
        """The gRPC status code number."""
        return CODES[self.status][1]

    def details(self) -> list[dict[str, Any]]:
        """google.rpc error details (a BadRequest with field violations), JSON form."""
        if not self.violations:
            return []
        return [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": f, "description": d} for f, d in self.violations],
            }
        ]

    def body(self) -> dict[str, Any]:
        """The JSON error body of Google's REST APIs."""
        error: dict[str, Any] = {"code": self.http_status, "message": self.message, "status": self.status}
        if self.violations:
            error["details"] = self.details()
        return {"error": error}

    def status_json(self) -> dict[str, Any]:
        """A google.rpc.Status in JSON form (for a failed operation)."""
        found: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.violations:
            found["details"] = self.details()
        return found


@dataclass
class Fault:
    """The next `times` calls of `method` fail with `status`."""

    method: str
    status: str
    times: int
    message: str


@dataclass
class Faults:
    """Injected failures and delays, controllable from tests while the emulator serves."""

    operation_delay: float = 0.0
    request_delay: float = 0.0
    _armed: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, method: str = "*", status: str = "UNAVAILABLE", times: int = 1, message: str = "") -> None:
        """Make the next `times` calls of a method (gRPC name, e.g. CreateService; * for any) fail."""
        if status not in CODES:
            raise ValueError(f"unknown status {status!r} (known: {', '.join(CODES)})")
        text = message or {
            "UNAVAILABLE": "The service is currently unavailable.",
            "RESOURCE_EXHAUSTED": "Quota exceeded for quota metric 'Write requests'.",
            "ABORTED": "The operation was aborted due to a concurrent modification.",
        }.get(status, f"Injected {status}.")
        with self._lock:
            self._armed.append(Fault(method, status, times, text))

    def slow_operations(self, seconds: float) -> None:
        """Make every new long-running operation finish `seconds` after it starts (0: at once)."""
        self.operation_delay = seconds

    def clear(self) -> None:
        """Remove every armed fault and delay."""
        with self._lock:
            self._armed.clear()
        self.operation_delay = 0.0
        self.request_delay = 0.0

    def check(self, method: str) -> None:
        """Raise the ApiError armed for this method, if any, consuming one use of it."""
        with self._lock:
            for fault in self._armed:
                if fault.times > 0 and fault.method in (method, "*"):
                    fault.times -= 1
                    if fault.times == 0:
                        self._armed.remove(fault)
                    raise ApiError(fault.status, fault.message)
