"""The provider contract: what every target plugin implements, and the data it exchanges."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from multicloud.resources import Resource

if TYPE_CHECKING:
    from multicloud.planner import Change
    from multicloud.spec.targets import TargetSpec
    from multicloud.terminal import Terminal


@dataclass(frozen=True)
class Capabilities:
    """What a target can run; `plan` rejects a spec that asks for more, before touching it."""

    raw_tcp_ingress: bool = True
    udp_ingress: bool = True
    http_ingress: bool = True
    websockets: bool = True
    internal_tcp: bool = True
    volumes: bool = True
    build: bool = True
    max_cpu: float | None = None
    max_memory: int | None = None
    max_replicas: int | None = None
    max_public_ports_per_service: int | None = None
    request_timeout: float | None = None
    empty_secrets: bool = True
    """False where the secret store refuses an empty value (Secrets Manager: 1 to 65,536 bytes)."""
    max_secret_bytes: int | None = None
    terminates_tls: bool = False
    """The platform's front end terminates TLS for every port (Cloud Run): containers serve plain."""
    health_timeout: float | None = None
    """Seconds a change usually needs to turn healthy there: the default health timeout (else 300)."""
    health_poll: float = 0.5
    """The longest pause between two health polls (the engine starts at 0.05 s and doubles): a target
    whose health reads are local and cheap (a Docker engine) polls more often, a cloud's API less."""
    cheap_reads: bool = False
    """A read of one resource by key costs about one local call (a Docker engine), less than observing
    the whole app: the engine then re-reads each key it sweeps after an apply (a cloud observes once)."""
    resources: tuple[str, ...] = ()
    """The types of backing resource (`resources:` in the spec) the target provides, e.g. ("postgres",);
    see multicloud.backing for what providing one means."""
    notes: tuple[str, ...] = ()


class HealthState(Enum):
    """Where a resource stands after a change."""

    HEALTHY = "healthy"
    STARTING = "starting"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True)
class Health:
    """A resource's health with a reason a person can act on."""

    state: HealthState
    message: str = ""


@dataclass(frozen=True)
class Endpoint:
    """Where a port of a service is reached: for devices (MQTT URL) or people (HTTP URL)."""

    service: str
    port: str
    protocol: str
    url: str
    public: bool
    address: str = ""
    """The address the URL's host stands for where the target reports one (an NLB's, an ACI group's;
    an emulator's loopback address, which no DNS holds), else empty."""


@dataclass(frozen=True)
class ServiceStatus:
    """Replica counts and state of one service as the target reports them."""

    service: str
    desired: int
    running: int
    healthy: int
    state: str
    detail: str = ""


@dataclass(frozen=True)
class LogLine:
    """One line a service printed."""

    service: str
    instance: str
    message: str
    timestamp: datetime | None = None


@dataclass(frozen=True)
class Event:
    """Progress of an apply, for a display or a log."""

    kind: str
    resource: str
    message: str
    elapsed: float = 0.0


EventSink = Callable[[Event], None]


@runtime_checkable
class Provider(Protocol):
    """A deployment target. Every method documents what a failure leaves behind.

    Errors are raised as `multicloud.errors` types: RetryableError for transient
    conditions (the engine retries), UserError for what the caller must fix,
    FatalError for the rest; SDK exceptions are translated with `raise ... from exc`.
    """

    name: str
    capabilities: Capabilities

    def desired(self, spec: TargetSpec, secrets: Mapping[str, str]) -> list[Resource]:
        """Render the resources a target spec needs. Pure: no I/O beyond reading the spec's
        own files, no state kept on the provider, same input → same output whatever was called
        before. What apply needs beyond the compared properties travels in `Resource.payload`."""
        ...

    def observe(self, app: str) -> list[Resource]:
        """Return every resource the app owns, found by labels or tags, each with the
        `depends_on` it was applied with (so deletes run dependents first); reads only.
        Instances of one key that coexist (an apply killed between the create and the delete
        of a create-before-delete replace) are returned each on its own, told apart by
        `Resource.instance` and listed oldest first; broken parts of an instance (an exited
        replica) are reported in `Resource.faults`."""
        ...

    def read(self, app: str, key: str) -> list[Resource]:
        """Return every instance of one owned resource as observe would, [] when there is
        none; reads only. The engine reads before and after every create, update and delete."""
        ...

    def apply(self, app: str, change: Change, emit: EventSink) -> None:
        """Carry out one CREATE, UPDATE or DELETE (a planned REPLACE reaches the provider as a
        CREATE and a DELETE, ordered by `replace_mode`; nothing else is ever passed).

        CREATE makes a new instance of `change.after`; for a create-before-delete resource it
        must be able to coexist with the instance it replaces. A failure leaves a labelled,
        possibly partial instance that observe reports, so the next plan finishes or removes it.
        UPDATE changes `change.before` in place into `change.after`; a failure leaves the
        resource with some of the new values, which the next plan shows as drift.
        DELETE removes exactly the instance observed in `change.before` (its ids travel in
        `before.payload`), nothing newer of the same key; an instance already gone is done.
        A failure leaves the rest of that instance labelled for the next apply to remove.
        The engine re-reads afterwards and fails the step unless the result is what was asked."""
        ...

    def health(self, app: str, resource: Resource) -> Health:
        """Report whether a resource has become healthy since it was applied; reads only."""
        ...

    def status(self, app: str) -> list[ServiceStatus]:
        """Report replica counts and state per service; reads only."""
        ...

    def logs(
        self, app: str, service: str | None, *, follow: bool = False, tail: int | None = 100,
        since: datetime | None = None,
    ) -> Iterator[LogLine]:
        """Yield log lines of one service or all of them: of the history, those at or after `since`
        (a time with a zone), then the last `tail` (None: all; 0: none); reads only. A provider whose
        platform cannot tell when a line was written raises UserError for `since`."""
        ...

    def endpoints(self, app: str) -> list[Endpoint]:
        """Return where each exposed port is reached; reads only."""
        ...


ProviderFactory = Callable[[Mapping[str, Any]], Provider]


@dataclass(frozen=True)
class RunningEmulator:
    """A started emulator: where it listens and the environment a client needs to use it."""

    name: str
    endpoint: str
    environment: Mapping[str, str]
    stop: Callable[[], None]
    notes: tuple[str, ...] = field(default=(), kw_only=True)
    """One-line facts for the person running it (extra services, what is missing); not environment."""


@runtime_checkable
class Emulator(Protocol):
    """A local stand-in for a cloud's control plane, registered under `multicloud.emulators`."""

    def start(self, host: str = "127.0.0.1", port: int = 0) -> RunningEmulator:
        """Start serving in the background; port 0 picks a free one."""
        ...


@runtime_checkable
class SupportsQuickObserve(Protocol):
    """A provider whose observe can run without its settings model or SDK, so that a plan or apply
    with nothing to change, from a compiled target (multicloud.compiled), imports neither."""

    def observer(self) -> tuple[str, dict[str, Any]]:
        """An importable `module:function` and plain data (picklable, no secret) such that
        `function(data, app)` returns what `observe(app)` returns now; its module imports no
        pydantic and no SDK."""
        ...


@runtime_checkable
class SupportsRollback(Protocol):
    """A provider that keeps previous revisions can return a service to the one before."""

    def rollback(self, app: str, service: str) -> str:
        """Point the service back at its previous revision; return a one-line account of
        what changed. Raises UserError when there is no previous revision."""
        ...


@runtime_checkable
class SupportsExec(Protocol):
    """A provider that can run a command in a running replica of a service."""

    def exec(self, app: str, service: str, command: Sequence[str], *, replica: int, terminal: Terminal) -> int:
        """Run `command` in replica `replica` (1-based) of `service`, wired to `terminal`; return its
        exit status (0 when the platform does not report one, as ACI). UserError when the service
        has no such running replica or the target refuses (saying which setting it needs);
        leaves nothing behind but what the command itself did."""
        ...


@runtime_checkable
class SupportsPublicNames(Protocol):
    """A provider that knows the names its public ports are reached at (a generated TLS certificate is
    issued for them)."""

    def public_names(self, spec: TargetSpec) -> list[str]:
        """The DNS names and IP addresses devices and people reach the app's public ports at on this
        target, as the plan knows them before anything exists (a `*.` wildcard for a name the platform makes
        up at creation, as AWS names an NLB: a name learnt only then would re-issue the certificate at the
        next apply); reads nothing."""
        ...
