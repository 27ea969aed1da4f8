"""The data plane: desired units in, real containers out, level-based.

One background thread makes the engine match the desired units on every pass (on a change, and
once a `period` otherwise): it lists the session's containers by label, removes what is not
desired or no longer matches, creates what is missing, restarts members that a liveness probe
finds unhealthy, and records what each unit's containers are doing. A killed container is thus
replaced (or restarted by its restart policy), as the clouds do. `close()` removes every object
the session made; a session whose process died is swept by the next one started on this host.
"""

from __future__ import annotations

import functools
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from multicloud.errors import MulticloudError
from multicloud_docker import execs
from multicloud_docker.client import ClientFactory, default_factory, guard, read_client
from multicloud_docker.dataplane import engine as E
from multicloud_docker.dataplane.desired import Unit, holder_hash, member_hash
from multicloud_docker.dataplane.holder import ensure_image
from multicloud_docker.dataplane.observed import MemberState, UnitState, member_state

PERIOD = 1.0
SHARED = "shared"
"""The unit key the session's shared volumes are named under."""
PROBE_TIMEOUT = 2.0


def engine_reachable(host: str | None = None) -> bool:
    """True when a Docker engine answers a ping within two seconds (unix socket or plain tcp)."""
    client = read_client(host)
    if client is None:
        return False
    client.timeout = PROBE_TIMEOUT
    try:
        return client.ping()
    except Exception:
        return False


class DataPlane:
    """Runs units as containers on one engine for one emulator, until `close()`."""

    def __init__(self, emulator: str, *, client_factory: ClientFactory | None = None, period: float = PERIOD) -> None:
        self.emulator = emulator
        self.session = secrets.token_hex(5)
        self.period = period
        self.labels = E.session_labels(self.session, emulator)
        self._factory = client_factory or default_factory(None)
        self._secret = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._desired: dict[str, Unit] = {}
        self._generation: dict[str, int] = {}
        self._converged: dict[str, int] = {}
        self._errors: dict[str, str] = {}
        self._forced: set[str] = set()
        self._purged: set[str] = set()
        self._dropped: set[str] = set()
        self._states: dict[str, UnitState] = {}
        self._restarts: dict[tuple[str, str], int] = {}
        self._thread: threading.Thread | None = None
        self._api: Any = None
        self._reader: Any = None
        self._reader_lock = threading.Lock()
        self._holder_image = ""
        self.swept: list[str] = []

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> DataPlane:
        """Sweep dead sessions' leftovers, prepare the holder image and start the loop thread.
        Raises the engine's errors (nothing is left running)."""
        self._api = self._factory()
        self.swept = E.sweep_orphans(self._api)
        self._holder_image = ensure_image(self._api)
        self._thread = threading.Thread(target=self._loop, name=f"{self.emulator}-dataplane", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the loop and remove every container, network and volume of this session."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        if self._api is not None:
            E.sweep(self._api, f"{E.SESSION}={self.session}")

    # --- desired state -----------------------------------------------------------------------

    def apply(self, unit: Unit) -> None:
        """Desire a unit (replacing an earlier one of the same key); the loop acts on it."""
        def desire() -> None:
            self._desired[unit.key] = unit
            self._purged.discard(unit.key)
            self._dropped.difference_update(v for m in unit.members for v in m.shared)

        self._change(unit.key, desire)

    def remove(self, key: str) -> None:
        """Desire no unit under a key: its containers are removed (its volumes stay)."""
        self._change(key, lambda: self._desired.pop(key, None))

    def purge(self, key: str) -> None:
        """Desire no unit under a key and none of its data: containers and volumes are removed."""
        def undesire() -> None:
            self._desired.pop(key, None)
            self._purged.add(key)

        self._change(key, undesire)

    def drop_shared(self, volume: str) -> None:
        """Remove a shared volume of the session (what a deleted cloud object shared, e.g. a database's
        socket) once no container uses it; the loop tries on each pass until then."""
        with self._lock:
            self._dropped.add(volume)
        self._wake.set()

    def client(self) -> Any:
        """A new engine client of this plane's engine (for work the loop does not do: builds)."""
        return self._factory()

    def run_command(
        self, key: str, member: str, argv: list[str], env: dict[str, str] | None = None
    ) -> tuple[int, str]:
        """Run a command to its end in a member's running container; return its exit code and output.
        Raises MulticloudError when the member has no container or the engine fails."""
        state = self.state(key).members.get(member)
        if state is None or not state.container:
            raise MulticloudError(f"{key}: {member} has no container to run a command in")
        api = self._factory()
        with guard(f"running a command in {member}"):
            made = api.exec_create(state.container, argv, environment=env or None)
            output = api.exec_start(made["Id"])
            code = api.exec_inspect(made["Id"]).get("ExitCode")
        return int(code if code is not None else -1), bytes(output).decode("utf-8", "replace")

    def loopback(self, key: str) -> str:
        """A loopback address of this session's own for `key` (where an emulator publishes what a cloud
        name stands for): stable while the session lives, apart from every other session's."""
        from multicloud.emulators import loopback_address

        return loopback_address(f"{self.session}/{key}")

    def network(self, network: str) -> tuple[str, str]:
        """Create a session network now (units on it use it as it is); return the host's address
        on it and its subnet. Raises the engine's errors."""
        name = E.ensure_network(self._api, self.session, network, self.labels)
        return E.gateway(self._api, name)

    def recreate(self, key: str) -> None:
        """Replace all of a unit's containers with new ones (a restart of the whole unit)."""
        self._change(key, lambda: self._forced.add(key))

    def _change(self, key: str, edit: Callable[[], object]) -> None:
        with self._lock:
            edit()
            self._generation[key] = self._generation.get(key, 0) + 1
        self._wake.set()

    # --- reports -----------------------------------------------------------------------------

    def state(self, key: str) -> UnitState:
        """What a unit's containers are doing, as of the last pass; converged means the
        latest change has been acted on."""
        with self._lock:
            seen = self._states.get(key, UnitState(key, False))
            done = self._converged.get(key, -1) >= self._generation.get(key, 0)
            return UnitState(key, done, self._errors.get(key), seen.members, seen.address)

    def wait(self, key: str, timeout: float = 60.0) -> UnitState:
        """Block until a unit has converged (or failed to) or timeout passes; return its state."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.state(key)
            if state.converged or state.error or time.monotonic() >= deadline:
                return state
            time.sleep(0.05)

    def logs(
        self, key: str, member: str, tail: int | None = None, *, timestamps: bool = False, since: float | None = None
    ) -> str:
        """A member's output (stdout and stderr) so far (from `since`, seconds since the epoch), each
        line after its RFC 3339 time when `timestamps`; '' when it has no container."""
        state = self.state(key).members.get(member)
        if state is None or not state.container:
            return ""
        with self._reader_lock:
            if self._reader is None:
                self._reader = self._factory()
            try:
                with guard(f"reading the logs of {member}"):
                    extra = {"since": since} if since else {}
                    data = self._reader.logs(
                        state.container, stdout=True, stderr=True, tail=tail or "all", timestamps=timestamps, **extra
                    )
            except MulticloudError:
                return ""
        return bytes(data).decode("utf-8", "replace")

    def exec(self, key: str, member: str, command: Sequence[str], *, tty: bool = True,
             size: tuple[int, int] | None = None) -> socket.socket | None:
        """Start `command` in a member's running container (the engine's exec, stdin attached, its
        terminal `size` rows x columns) and return the connection carrying its streams; None when
        the member is not running."""
        state = self.state(key).members.get(member)
        if state is None or not state.container or state.state != "running":
            return None
        api = self._factory()
        conn, exec_id = execs.start(api, state.container, command, stdin=True, tty=tty, where=member)
        execs.resize(api, exec_id, size, member)
        return conn

    # --- the loop ----------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            self._pass()
            self._wake.wait(self.period)

    def _pass(self) -> None:
        """One reconcile of every unit; an engine error is recorded on the units, never raised."""
        with self._lock:
            desired = dict(self._desired)
            generations = dict(self._generation)
            forced, self._forced = self._forced, set()
            purged = {key for key in self._purged if key not in self._desired}
            dropped = set(self._dropped)
        try:
            observed = self._observed()
        except MulticloudError as exc:
            with self._lock:
                self._errors.update({key: exc.message for key in desired})
            return
        done: dict[str, bool] = {}
        for key in (set(observed) | set(generations)) - set(desired):
            gone = [c["Id"] for c in observed.get(key, [])]
            done[key] = self._guarded(key, functools.partial(E.remove_containers, self._api, gone))
            if done[key] and key in purged:
                done[key] = self._guarded(key, functools.partial(E.remove_volumes, self._api, self.session, key))
        for volume in dropped:
            try:
                E.remove_volume(self._api, E.volume_name(self.session, SHARED, volume))
            except MulticloudError:
                continue  # still in use: the next pass tries again
            with self._lock:
                self._dropped.discard(volume)
        for key, unit in desired.items():
            if self._stopping.is_set():
                return
            converge = functools.partial(self._converge, unit, observed.get(key, []), key in forced)
            done[key] = self._guarded(key, converge)
        self._record(desired)
        with self._lock:  # settled only now, so a converged unit's state already shows its containers
            for key, ok in done.items():
                if ok:
                    self._converged[key] = generations.get(key, 0)
                    self._errors.pop(key, None)
                    if key in purged:  # a purge asked for during this pass is acted on by the next one
                        self._purged.discard(key)
                elif key in forced:
                    self._forced.add(key)

    def _guarded(self, key: str, action: Callable[[], None]) -> bool:
        try:
            action()
        except MulticloudError as exc:
            with self._lock:
                self._errors[key] = exc.message
            return False
        return True

    def _observed(self) -> dict[str, list[dict[str, Any]]]:
        with guard("listing data-plane containers"):
            found = self._api.containers(all=True, filters={"label": [f"{E.SESSION}={self.session}"]})
        units: dict[str, list[dict[str, Any]]] = {}
        for container in found:
            units.setdefault(str((container.get("Labels") or {}).get(E.UNIT, "")), []).append(container)
        return units

    def _converge(self, unit: Unit, observed: list[dict[str, Any]], forced: bool) -> None:
        """Make one unit's containers match it; raises MulticloudError (what exists stays labelled)."""
        wanted_holder = holder_hash(unit, self._secret)
        holders = [c for c in observed if _label(c, E.ROLE) == "holder"]
        holder = next((c for c in holders if _label(c, E.HASH) == wanted_holder and c.get("State") == "running"), None)
        if forced or holder is None:
            E.remove_containers(self._api, [c["Id"] for c in observed if _label(c, E.ROLE) != "holder"])
            E.remove_containers(self._api, [c["Id"] for c in holders])
            observed = []
            network = E.ensure_network(self._api, self.session, unit.network, self.labels) if unit.network else None
            labels = {**self.labels, E.UNIT: unit.key, E.ROLE: "holder", E.HASH: wanted_holder}
            name = E.container_name(self.session, unit.key, "")
            holder_id = E.create_holder(self._api, self._holder_image, unit, name, labels, network=network)
            with self._lock:
                for member in unit.members:
                    self._restarts.pop((unit.key, member.name), None)
        else:
            holder_id = str(holder["Id"])
            E.remove_containers(self._api, [c["Id"] for c in holders if c is not holder])
        present = {_label(c, E.MEMBER): c for c in observed if _label(c, E.ROLE) == "member"}
        for member in unit.members:
            wanted = member_hash(unit, member, self._secret)
            current = present.pop(member.name, None)
            if current is not None and _label(current, E.HASH) == wanted:
                self._heal(unit.key, member.name, current, restart=bool(member.probe and member.probe.restart))
                continue
            if current is not None:
                E.remove_containers(self._api, [current["Id"]])
            labels = {**self.labels, E.UNIT: unit.key, E.ROLE: "member", E.MEMBER: member.name, E.HASH: wanted}
            volumes = {E.volume_name(self.session, unit.key, v): path for v, path in member.volumes.items()}
            E.ensure_volumes(self._api, volumes, {**self.labels, E.UNIT: unit.key})
            shared = {E.volume_name(self.session, SHARED, v): path for v, path in member.shared.items()}
            E.ensure_volumes(self._api, shared, self.labels)
            volumes.update(shared)
            name = E.container_name(self.session, unit.key, member.name)
            E.create_member(self._api, member, holder_id, name, labels, volumes=volumes)
        E.remove_containers(self._api, [c["Id"] for c in present.values()])

    def _heal(self, key: str, member: str, container: dict[str, Any], *, restart: bool) -> None:
        """Restart a member whose liveness probe says it is unhealthy (the engine only reports it)."""
        if restart and "(unhealthy)" in str(container.get("Status", "")):
            with guard(f"restarting unhealthy container {member}"):
                self._api.restart(container["Id"], timeout=5)
            with self._lock:
                self._restarts[(key, member)] = self._restarts.get((key, member), 0) + 1

    def _record(self, desired: dict[str, Unit]) -> None:
        """Inspect the desired units' containers and keep what they are doing for `state`."""
        try:
            units = self._observed()
        except MulticloudError:
            return
        states: dict[str, UnitState] = {}
        for key in desired:
            members: dict[str, MemberState] = {}
            address = ""
            for container in units.get(key, []):
                try:
                    with guard("inspecting a data-plane container"):
                        info = self._api.inspect_container(container["Id"])
                except MulticloudError:
                    continue
                if _label(container, E.ROLE) == "holder":
                    address = _address(info)
                    continue
                name = _label(container, E.MEMBER)
                with self._lock:
                    extra = self._restarts.get((key, name), 0)
                members[name] = member_state(name, info, extra)
            states[key] = UnitState(key, True, None, members, address)
        with self._lock:
            self._states = states


def _label(container: dict[str, Any], key: str) -> str:
    return str((container.get("Labels") or {}).get(key, ""))


def _address(info: dict[str, Any]) -> str:
    """The holder's first network address (the unit's own address on its network)."""
    networks = ((info.get("NetworkSettings") or {}).get("Networks") or {}).values()
    return next((str(n.get("IPAddress")) for n in networks if n.get("IPAddress")), "")
