"""Read-only views of a running app: status per service, logs, endpoints."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from multicloud.addressing import endpoint_url
from multicloud.contract import Endpoint, LogLine, ServiceStatus
from multicloud.errors import UserError
from multicloud_docker.client import guard
from multicloud_docker.labels import SCALE_PROPERTY
from multicloud_docker.observe import Replica, generations, replicas, service_instance
from multicloud_docker.probing import probe_now

_END = object()


def status(api: Any, app: str) -> list[ServiceStatus]:
    """Replica counts per service from one container list, for its newest generation (the
    one an apply started last): `desired` is the number of replica indices it holds, healthy
    counts replicas running and passing their own health check. Older generations still
    present make the state `converging`; faulty replicas make it `unhealthy`."""
    result = []
    for name, group in _by_service(replicas(api, app)).items():
        generations_found = generations(group)
        newest = generations_found[-1]
        instance = service_instance(name, newest)
        desired = int(instance.properties[SCALE_PROPERTY])
        running = sum(1 for r in newest if r.live)
        check = instance.properties.get("healthcheck")
        passing = {r.id for r in newest if _healthy(api, r, check)}
        healthy = len(passing)
        if running == 0:
            state = "stopped"
        elif instance.faults:
            state = "unhealthy"
        elif len(generations_found) > 1:
            state = "converging"
        elif healthy < desired:
            state = "starting"
        else:
            state = "running"
        details = list(instance.faults)
        details += [f"{r.name}: {r.status}" for r in newest if r.id not in passing and not r.fault]
        if len(generations_found) > 1:
            details.append(f"{len(generations_found) - 1} older generation(s) still present")
        result.append(ServiceStatus(name, desired, running, healthy, state, "; ".join(details)))
    return result


def endpoints(api: Any, app: str, public_host: str) -> list[Endpoint]:
    """One endpoint per exposed port: host:port on the engine's host for public ports (one
    per replica when the engine picked the port), service-name URLs for internal ones."""
    found: list[Endpoint] = []
    for name, group in _by_service(replicas(api, app)).items():
        resource = service_instance(name, generations(group)[-1])
        for port in resource.properties.get("ports") or []:
            if port.get("expose") != "public":
                url = endpoint_url(port["protocol"], name, port["port"])
                found.append(Endpoint(name, port["name"], port["protocol"], url, False))
                continue
            for host_port in _host_ports(group, port):
                url = endpoint_url(port["protocol"], public_host, host_port)
                found.append(Endpoint(name, port["name"], port["protocol"], url, True))
    return found


@dataclass(frozen=True)
class LogWindow:
    """Which history to read: the last `tail` lines (None: all, 0: none) written at or after `since`."""

    tail: int | None = None
    since: datetime | None = None

    def options(self) -> dict[str, Any]:
        """The Docker API's arguments for this window."""
        options: dict[str, Any] = {"tail": "all" if self.tail is None else max(self.tail, 0)}
        if self.since is not None:
            options["since"] = max(self.since.timestamp(), 0.001)
        return options


def logs(api: Any, app: str, service: str | None, follow: bool, window: LogWindow) -> Iterator[LogLine]:
    """Log lines of every container of the app or of one service, oldest first; with follow,
    interleaved as they arrive until every container's stream ends."""
    group = [r for r in replicas(api, app) if service in (None, r.service)]
    if not group:
        what = f"service {service!r} of app {app!r}" if service else f"app {app!r}"
        raise UserError(f"no containers found for {what}", hint="run `multicloud status` to see what is deployed")
    if not follow:
        lines = [line for r in group for line in _read(api, r, window)]
        lines.sort(key=lambda line: line.timestamp or datetime.min.replace(tzinfo=UTC))
        yield from lines
        return
    yield from _follow(api, group, window)


def _read(api: Any, replica: Replica, window: LogWindow) -> list[LogLine]:
    if window.tail == 0:
        return []
    with guard(f"reading logs of {replica.name}"):
        raw = api.logs(replica.id, stdout=True, stderr=True, timestamps=True, **window.options())
    return [_line(replica, text) for text in raw.decode("utf-8", "replace").splitlines()]


def _follow(api: Any, group: Sequence[Replica], window: LogWindow) -> Iterator[LogLine]:
    lines: queue.Queue[object] = queue.Queue(maxsize=10000)

    def pump(replica: Replica) -> None:
        try:
            with guard(f"following logs of {replica.name}"):
                stream = api.logs(
                    replica.id,
                    stdout=True,
                    stderr=True,
                    timestamps=True,
                    stream=True,
                    follow=True,
                    **window.options(),
                )
                pending = b""
                for chunk in stream:
                    pending += chunk
                    *complete, pending = pending.split(b"\n")
                    for text in complete:
                        lines.put(_line(replica, text.decode("utf-8", "replace")))
        except Exception as exc:  # reported as a line: one dead stream must not end the others
            lines.put(LogLine(replica.service, _instance(replica), f"(log stream ended: {exc})"))
        finally:
            lines.put(_END)

    for replica in group:
        threading.Thread(target=pump, args=(replica,), daemon=True, name=f"logs-{replica.name}").start()
    open_streams = len(group)
    while open_streams:
        item = lines.get()
        if item is _END:
            open_streams -= 1
        elif isinstance(item, LogLine):
            yield item


def _line(replica: Replica, text: str) -> LogLine:
    stamp, _, message = text.partition(" ")
    when = _parse_time(stamp)
    return LogLine(replica.service, _instance(replica), message if when else text, when)


def _instance(replica: Replica) -> str:
    return f"{replica.service}-{replica.index}"


def _parse_time(text: str) -> datetime | None:
    if not text.endswith("Z") or "T" not in text:
        return None
    head, _, fraction = text[:-1].partition(".")
    try:
        return datetime.fromisoformat(f"{head}.{(fraction + '000000')[:6]}+00:00")
    except ValueError:
        return None


def _host_ports(group: Sequence[Replica], port: dict[str, Any]) -> list[int]:
    if port.get("host_port"):
        return [int(port["host_port"])]
    transport = "udp" if port["protocol"] == "udp" else "tcp"
    found = {
        int(p["PublicPort"])
        for r in group
        if r.live
        for p in r.ports
        if p.get("PrivatePort") == port["port"] and p.get("Type") == transport and p.get("PublicPort")
    }
    return sorted(found)


def _by_service(found: Sequence[Replica]) -> dict[str, list[Replica]]:
    groups: dict[str, list[Replica]] = {}
    for replica in found:
        groups.setdefault(replica.service, []).append(replica)
    return dict(sorted(groups.items()))


def _healthy(api: Any, replica: Replica, check: Any) -> bool:
    """Running and, if it has a health check, passing it: by the list's status text or, while the
    engine has not run it yet, by running it now as apply does (probing.probe_now)."""
    text = replica.status
    if replica.state != "running" or "(unhealthy)" in text:
        return False
    if "(health: starting)" in text:
        return probe_now(api, replica.id, check)
    return "(health:" not in text
