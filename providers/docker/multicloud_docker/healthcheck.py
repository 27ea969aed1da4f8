"""Spec health checks as Docker health checks that work without curl in the image.

tcp and http checks run under /bin/sh as the core's portable probe (multicloud.probes): a
chain of tools (bash, python3, perl, nc, curl, wget, BusyBox's applets) where one that fails
to run falls through to the next; an http check of a TLS port speaks HTTPS without verifying
the certificate (the probe runs on the container's own loopback). An image with no shell or
none of the tools (distroless) needs a `command:` check instead; docs/providers/docker.md says so.
"""

from __future__ import annotations

from typing import Any

from multicloud.probes import probe_script

TYPE_CHECKING = False
if TYPE_CHECKING:
    from multicloud.spec.models import HealthCheck, Service

MIN_INTERVAL = 0.001
NANOS = 1_000_000_000


def render(service: Service) -> dict[str, Any] | None:
    """The healthcheck property of a service: probe command and timings in seconds, or None."""
    check = service.healthcheck
    if check is None:
        return None
    return {
        "test": probe(check, service),
        "interval": check.interval,
        "timeout": check.timeout,
        "retries": check.retries,
        "start_period": check.start_period,
    }


def probe(check: HealthCheck, service: Service) -> list[str]:
    """The Docker `test` of a check: CMD for commands, CMD-SHELL for tcp and http probes."""
    script = probe_script(check, service)
    if script is None:
        return ["CMD", *(check.command or [])]
    return ["CMD-SHELL", script]


def docker_healthcheck(rendered: dict[str, Any] | None) -> dict[str, Any] | None:
    """The engine's Healthcheck object for a rendered healthcheck property."""
    if rendered is None:
        return None
    return {
        "test": list(rendered["test"]),
        "interval": _nanos(max(float(rendered["interval"]), MIN_INTERVAL)),
        "timeout": _nanos(max(float(rendered["timeout"]), MIN_INTERVAL)),
        "retries": int(rendered["retries"]),
        "start_period": _nanos(float(rendered["start_period"])),
    }


def _nanos(seconds: float) -> int:
    return round(seconds * NANOS)
