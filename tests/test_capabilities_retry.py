"""Capabilities are checked before anything is touched; retries back off with jitter."""

from __future__ import annotations

import random

import pytest

from multicloud import capabilities
from multicloud.addressing import endpoint_url
from multicloud.capabilities import FALLBACK
from multicloud.contract import Capabilities
from multicloud.engine import Engine
from multicloud.errors import FatalError, RetryableError
from multicloud.fallbacks import as_served
from multicloud.planner import Action, Change, Plan
from multicloud.resources import Resource
from multicloud.retry import RetryPolicy, call_with_retries
from multicloud.spec import loads, target_spec
from multicloud.spec.messages import dotted
from multicloud.testing import MemoryCloud, MemoryProvider
from tests.helpers import SKETCH

IOT = target_spec(loads(SKETCH), "gcp")


def violations(spec, caps):
    """The findings as people read them: `services.web.ports[0]: ...`."""
    return [f"{dotted(path)}: {message}" for path, message in capabilities.violations(spec, caps)]
CLOUD_RUN = Capabilities(
    raw_tcp_ingress=False,
    udp_ingress=False,
    internal_tcp=False,
    volumes=False,
    max_cpu=8,
    max_memory=32 * 1024**3,
    max_public_ports_per_service=1,
)


def test_a_target_that_can_run_everything_has_no_violations():
    assert violations(IOT, Capabilities()) == []


def test_violations_say_what_to_do_instead():
    found = violations(IOT, CLOUD_RUN)
    assert (
        "services.broker.ports[0]: mqtt (1883/mqtt): target 'gcp' has no raw TCP ingress; serve MQTT over "
        "WebSockets (protocol: mqtt-ws) for devices, or make it internal" + FALLBACK
    ) in found
    assert any(v.startswith("services.broker.ports: target 'gcp' exposes at most 1 public port") for v in found)
    assert any(v.startswith("services.db.ports[0]: pg: target 'gcp' has no internal tcp networking") for v in found)
    assert any(v.startswith("services.db.volumes: target 'gcp' has no persistent volumes") for v in found)
    assert len(found) == 4


@pytest.mark.parametrize(
    ("caps", "expected"),
    [
        (Capabilities(websockets=False), "services.broker.ports[1]: mqtt-ws (8080/mqtt-ws): target 'gcp' does not"),
        (Capabilities(build=False), "services.broker.build: target 'gcp' cannot build images; give image: instead"),
        (Capabilities(max_cpu=0.25), "services.broker.resources.cpu: 0.5 exceeds target 'gcp''s maximum of 0.25"),
        (Capabilities(max_memory=256 * 1024**2), "services.broker.resources.memory: 512Mi exceeds target 'gcp''s"),
        (Capabilities(max_replicas=1), "services.ingestion.replicas: 2 exceeds target 'gcp''s maximum of 1"),
    ],
)
def test_each_capability(caps, expected):
    assert any(v.startswith(expected) for v in violations(IOT, caps)), violations(IOT, caps)


def test_public_http_needs_http_ingress():
    view = target_spec(
        loads(
            "name: a\nservices:\n  web:\n    image: x\n"
            "    ports: [{name: http, port: 80, protocol: http, expose: public}]\n"
            "targets:\n  t: {provider: p}\n"
        ),
        "t",
    )
    assert violations(view, Capabilities(http_ingress=False)) == [
        "services.web.ports[0]: http (80/http): target 't' has no public HTTP ingress; make the port internal"
    ]


TLS_PORTS = (
    "name: a\nservices:\n  web:\n    image: x\n    ports:\n"
    "      - {name: https, port: 8443, protocol: https, expose: public}\n"
    "      - {name: mqtts, port: 8883, protocol: mqtts, expose: public}\n"
    "      - {name: wss, port: 8081, protocol: mqtt-wss, expose: public}\n"
    "targets:\n  t: {provider: p}\n"
)


def test_tls_ports_where_the_platform_terminates_tls_are_served_plain_and_raw_tcp_still_needs_a_fallback():
    caps = Capabilities(raw_tcp_ingress=False, terminates_tls=True)
    served = as_served(target_spec(loads(TLS_PORTS), "t"), caps)
    assert [p.protocol for p in served.services["web"].ports] == ["http", "mqtts", "mqtt-ws"]
    assert violations(served, caps) == [
        "services.web.ports[1]: mqtts (8883/mqtts): target 't' has no raw TCP ingress; serve MQTT over WebSockets "
        "(protocol: mqtt-ws) for devices, or make it internal" + FALLBACK,
    ]
    assert violations(target_spec(loads(TLS_PORTS), "t"), Capabilities()) == []
    no_ws = violations(target_spec(loads(TLS_PORTS), "t"), Capabilities(websockets=False, http_ingress=False))
    assert len(no_ws) == 2 and "no public HTTP ingress" in no_ws[0] and "does not carry WebSockets" in no_ws[1]


@pytest.mark.parametrize(
    ("protocol", "url"),
    [
        ("http", "http://h:1"),
        ("https", "https://h:1"),
        ("mqtt", "mqtt://h:1"),
        ("mqtts", "mqtts://h:1"),
        ("mqtt-ws", "ws://h:1/mqtt"),
        ("mqtt-wss", "wss://h:1/mqtt"),
    ],
)
def test_endpoint_urls_show_the_tls_scheme(protocol, url):
    assert endpoint_url(protocol, "h", 1) == url


def test_excluded_services_are_not_checked():
    text = SKETCH.replace(
        "  gcp:   {provider: gcp-cloudrun, project: my-proj, region: europe-west1}",
        "  gcp: {provider: gcp-cloudrun, exclude: [db]}",
    )
    text = text.replace("depends_on: [broker, db]", "depends_on: [broker]")
    found = violations(target_spec(loads(text), "gcp"), CLOUD_RUN)
    assert not any("services.db" in v for v in found)


# --- retry ---------------------------------------------------------------------------------


def test_delays_grow_and_are_capped():
    policy = RetryPolicy(attempts=10, base_delay=1.0, max_delay=5.0)
    rng = random.Random(1)
    samples = {n: [policy.delay(n, rng) for _ in range(200)] for n in (1, 2, 3, 10, 5000)}
    assert max(samples[1]) <= 1.0 and max(samples[2]) <= 2.0 and max(samples[3]) <= 4.0
    assert max(samples[10]) <= 5.0 and max(samples[5000]) <= 5.0  # no overflow for huge attempt numbers
    assert min(samples[10]) >= 0 and max(samples[10]) > 2.5  # full jitter spreads over the range


def test_zero_base_delay_never_waits():
    assert RetryPolicy(base_delay=0).delay(3, random.Random()) == 0


def test_call_with_retries_counts_attempts():
    calls: list[int] = []
    sleeps: list[float] = []
    seen: list[tuple[int, str]] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RetryableError(f"busy {len(calls)}")
        return "ok"

    result = call_with_retries(
        flaky,
        RetryPolicy(attempts=5, base_delay=0.1),
        on_retry=lambda n, exc, wait: seen.append((n, exc.message)),
        sleep=sleeps.append,
        rng=random.Random(0),
    )
    assert result == ("ok", 3)
    assert seen == [(1, "busy 1"), (2, "busy 2")]
    assert len(sleeps) == 2


def test_call_with_retries_does_not_retry_other_errors():
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise FatalError("no")

    with pytest.raises(FatalError):
        call_with_retries(broken, RetryPolicy(attempts=5, base_delay=0), sleep=lambda s: None)
    assert len(calls) == 1


def test_call_with_retries_raises_the_last_retryable_error():
    calls: list[int] = []

    def always() -> None:
        calls.append(1)
        raise RetryableError(f"busy {len(calls)}")

    with pytest.raises(RetryableError, match="busy 4"):
        call_with_retries(always, RetryPolicy(attempts=4, base_delay=0), sleep=lambda s: None)


# --- engine scheduling of hand-made plans --------------------------------------------------


def _create(name: str, *requires: str) -> Change:
    resource = Resource("thing", name, {"n": name})
    return Change(Action.CREATE, resource.key, None, resource, requires=requires)


def test_requirements_outside_the_plan_are_already_met():
    provider = MemoryProvider(cloud=MemoryCloud())
    planned = Plan("app", "t", (_create("a", "thing/not-in-plan"),))
    result = Engine(provider, sleep=lambda s: None).apply(planned)
    assert [(s.key, s.outcome) for s in result.steps] == [("thing/a", "done")]


def test_circular_requirements_fail_instead_of_hanging():
    provider = MemoryProvider(cloud=MemoryCloud())
    planned = Plan(
        "app", "t", (_create("a", "thing/b"), _create("b", "thing/a"), _create("c"), _create("d", "thing/a"))
    )
    result = Engine(provider, sleep=lambda s: None).apply(planned)
    assert {s.key: s.outcome for s in result.steps} == {
        "thing/a": "failed",
        "thing/b": "blocked",
        "thing/c": "done",
        "thing/d": "blocked",
    }
    assert "required steps form a cycle" in str(result.failed[0].error)


def test_blocked_chains_are_blocked_not_failed_whatever_their_order():
    cloud = MemoryCloud()
    cloud.inject("create", "thing/a", FatalError("no"))
    planned = Plan("app", "t", (_create("c", "thing/b"), _create("b", "thing/a"), _create("a")))
    result = Engine(MemoryProvider(cloud=cloud), sleep=lambda s: None).apply(planned)
    assert {s.key: s.outcome for s in result.steps} == {"thing/a": "failed", "thing/b": "blocked", "thing/c": "blocked"}


def test_retry_after_advice_is_honoured_up_to_the_cap() -> None:
    from multicloud.errors import RetryableError
    from multicloud.retry import RetryPolicy, call_with_retries

    waits: list[float] = []
    failures = [RetryableError("throttled", retry_after=3.0), RetryableError("throttled", retry_after=99.0)]

    def operation() -> str:
        if failures:
            raise failures.pop(0)
        return "ok"

    policy = RetryPolicy(attempts=3, base_delay=0.0, max_delay=10.0)
    result, attempts = call_with_retries(operation, policy, sleep=waits.append)
    assert (result, attempts) == ("ok", 3)
    assert waits == [3.0, 10.0]
