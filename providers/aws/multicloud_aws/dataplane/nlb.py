"""The emulated Network Load Balancers: each NLB's TCP and TLS listeners listen on a loopback
address of the NLB's own (its DNS name stands for it, in no DNS; DescribeLoadBalancers reports it
as the NLB's address in each zone) at the listener's port, and forward each connection to a
healthy target of the listener's target group. The address is derived from the emulator server's
port and the DNS name, so two live emulators never share one for an app of the same name.

Targets are health-checked as an NLB does (a TCP connect to the traffic port every interval;
healthy after HealthyThresholdCount successes, unhealthy after UnhealthyThresholdCount
failures); with no healthy target the listener fails open to every registered one, as AWS does.
DescribeTargetHealth reports these states, and `draining` for a deregistered target until the ECS
scheduler's drain of its task is over. TLS listeners pass bytes through (the emulator holds
no ACM certificates); UDP listeners are not served.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from multicloud.emulators import loopback_address
from multicloud_aws import gaps
from multicloud_aws.dataplane.servers import port_of

DEFAULT_ACCOUNT = "123456789012"
"""The account the emulator's test credentials act in (moto's default)."""
CONNECT_TIMEOUT = 2.0
CHECK_TIMEOUT = 1.0
IDLE_LIMIT = 24 * 3600.0
"""A forwarded connection's longest life (an NLB keeps an active TCP flow open indefinitely)."""


def balancer_address(dns_name: str, server: str | int, account: str = DEFAULT_ACCOUNT) -> str:
    """The loopback address an NLB's DNS name stands for on the emulator serving at `server` (its
    endpoint URL, e.g. AWS_ENDPOINT_URL, or its port), in `account`."""
    owner = "" if account == DEFAULT_ACCOUNT else f"{account}/"
    return loopback_address(f"nlb/{port_of(server)}/{owner}{dns_name.lower()}")


def address_of(balancer: Any, server: str | int) -> str:
    """The loopback address of one of moto's load balancers (its account read from its ARN)."""
    return balancer_address(balancer.dns_name, server, str(balancer.arn).split(":")[4])


@dataclass
class TargetHealth:
    """What the health checks found of one target: its state and the streak behind it."""

    state: str = "initial"
    streak: int = 0
    due: float = 0.0


class Listener:
    """One listening socket of one NLB listener; forwards to its target group's targets."""

    def __init__(self, front: Balancers, address: str, port: int, group: str) -> None:
        self.front, self.group = front, group
        self.sock = socket.create_server((address, port), reuse_port=False)
        self.sock.settimeout(0.5)
        self._closed = threading.Event()
        threading.Thread(target=self._accept, name=f"nlb-{address}:{port}", daemon=True).start()

    def close(self) -> None:
        """Stop accepting (connections in flight end on their own)."""
        self._closed.set()
        self.sock.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._forward, args=(client,), daemon=True).start()

    def _forward(self, client: socket.socket) -> None:
        """Connect the caller to a target (healthy first); close it when none accepts."""
        from multicloud_docker.dataplane.splice import splice

        with client:
            for address, port in self.front.targets(self.group):
                try:
                    upstream = socket.create_connection((address, port), timeout=CONNECT_TIMEOUT)
                except OSError:
                    continue
                with upstream:
                    splice(client, upstream, time.monotonic() + IDLE_LIMIT)
                return


class Balancers:
    """Serves the listeners of the NLBs created through one emulator server and checks their targets."""

    def __init__(self, server_port: str) -> None:
        self.server_port = server_port
        self._listeners: dict[tuple[str, int], Listener] = {}
        self._health: dict[tuple[str, str, int], TargetHealth] = {}
        self._registered: dict[str, frozenset[tuple[str, int]]] = {}
        self._draining: dict[str, frozenset[tuple[str, int]]] = {}
        self._lock = threading.Lock()
        self.errors: dict[tuple[str, int], str] = {}
        """Listeners that could not listen (address, port) -> why."""

    def sync(self) -> None:
        """Listen for every listener of our NLBs, stop listening for the deleted; check due targets."""
        wanted: dict[tuple[str, int], str] = {}
        groups: dict[str, Any] = {}
        with gaps._lock:
            for balancer in self._balancers():
                address = address_of(balancer, self.server_port)
                for listener in list(balancer.listeners.values()):
                    forward = [a.data.get("TargetGroupArn") for a in listener.default_actions
                               if a.data.get("Type") == "forward" and a.data.get("TargetGroupArn")]
                    if listener.protocol in ("TCP", "TLS", "TCP_UDP") and forward:
                        wanted[(address, int(listener.port))] = str(forward[0])
            for regions in _elbv2_backends():
                for group in list(regions.target_groups.values()):
                    if group.arn in wanted.values():
                        groups[group.arn] = group
        for slot in [s for s in self._listeners if s not in wanted]:
            self._listeners.pop(slot).close()
        for slot, group_arn in wanted.items():
            current = self._listeners.get(slot)
            if current is not None:
                current.group = group_arn
                continue
            try:
                self._listeners[slot] = Listener(self, slot[0], slot[1], group_arn)
                self.errors.pop(slot, None)
            except OSError as exc:
                self.errors[slot] = str(exc)
        self._check(groups)

    def _balancers(self) -> Iterator[Any]:
        for backend in _elbv2_backends():
            for balancer in list(backend.load_balancers.values()):
                if balancer.type == "network" and getattr(balancer, "multicloud_server", None) == self.server_port:
                    yield balancer

    def _check(self, groups: dict[str, Any]) -> None:
        """Run the health checks that are due: a TCP connect to each target's traffic port."""
        now = time.monotonic()
        seen: set[tuple[str, str, int]] = set()
        for arn, group in groups.items():
            interval = float(group.health_check_interval_seconds or 30)
            healthy, unhealthy = int(group.healthy_threshold_count or 5), int(group.unhealthy_threshold_count or 2)
            for target in list(group.targets.values()):
                key = (arn, str(target["Id"]), int(target.get("Port") or group.port))
                seen.add(key)
                with self._lock:
                    health = self._health.setdefault(key, TargetHealth())
                if now < health.due:
                    continue
                health.due = now + interval
                ok = _accepts(key[1], key[2])
                if ok == (health.streak >= 0):
                    health.streak += 1 if ok else -1
                else:
                    health.streak = 1 if ok else -1
                if health.streak >= healthy:
                    health.state = "healthy"
                elif -health.streak >= unhealthy:
                    health.state = "unhealthy"
        with self._lock:
            for key in [k for k in self._health if k[0] in groups and k not in seen]:
                del self._health[key]

    def state(self, group: str, target: str, port: int) -> str | None:
        """A registered target's health state (initial, healthy, unhealthy), None when unknown."""
        with self._lock:
            found = self._health.get((group, target, port))
            return found.state if found is not None else None

    def registered(self, group: str, targets: set[tuple[str, int]],
                   draining: set[tuple[str, int]] | None = None) -> None:
        """The ECS scheduler (de)registered a service's targets: from now on a target left out gets no
        new connection, as an NLB stops routing to a target once its deregistration begins (the health
        checks would drop it only on their next round); its health is forgotten, so a task that later
        gets its address starts from `initial`. `draining` are the deregistered ones whose
        deregistration delay is not over (DescribeTargetHealth shows them draining)."""
        with self._lock:
            self._registered[group] = frozenset(targets)
            self._draining[group] = frozenset(draining or ())
            for key in [k for k in self._health if k[0] == group and (k[1], k[2]) not in targets]:
                del self._health[key]

    def draining(self, group: str) -> frozenset[tuple[str, int]]:
        """The targets of a group whose deregistration is in progress: (address, port)."""
        with self._lock:
            return self._draining.get(group, frozenset())

    def targets(self, group: str) -> list[tuple[str, int]]:
        """Where to forward a connection: the healthy targets (shuffled), else every registered one."""
        with self._lock:
            allowed = self._registered.get(group)
            known = [(k[1], k[2], h.state) for k, h in self._health.items()
                     if k[0] == group and (allowed is None or (k[1], k[2]) in allowed)]
        healthy = [(a, p) for a, p, s in known if s == "healthy"]
        chosen = healthy or [(a, p) for a, p, _ in known]
        return random.sample(chosen, len(chosen))

    def close(self) -> None:
        """Stop every listener."""
        for listener in self._listeners.values():
            listener.close()
        self._listeners.clear()


def _elbv2_backends() -> Iterator[Any]:
    from moto.elbv2.models import elbv2_backends

    for regions in list(elbv2_backends.values()):
        yield from list(regions.values())


def _accepts(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=CHECK_TIMEOUT).close()
    except OSError:
        return False
    return True
