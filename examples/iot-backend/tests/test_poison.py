"""Poison readings: acknowledged into the dead-letter table while good readings keep flowing."""

from __future__ import annotations

import json
import time

import pytest
from helpers import eventually, new_device, stored_seqs
from iotsim.api import ApiError, RegistryClient
from stack import DockerStack

pytestmark = pytest.mark.docker


def dead_letters(api: RegistryClient, device_id: str) -> list[dict[str, object]]:
    """Every dead letter of one device, newest first (following the pages)."""
    items: list[dict[str, object]] = []
    before = None
    while True:
        page = api.call("GET", "/dead-letters", device_id=device_id, limit=2, before=before)
        items += page["items"]
        before = page["next_before"]
        if before is None:
            return items


def counted(stack: DockerStack, reason: str) -> float:
    """Dead letters of one reason, over both replicas."""
    return sum(stack.metric("ingestion_dead_letters_total", r, f'reason="{reason}"') for r in (1, 2))


def test_poison_readings_become_dead_letters_and_good_readings_keep_flowing(
    stack: DockerStack, api: RegistryClient
) -> None:
    good = new_device(api, stack.mqtt_url, "steady")
    poisoner = new_device(api, stack.mqtt_url, "poisoner")
    before = {reason: counted(stack, reason) for reason in ("range", "schema", "database")}
    now = time.time()
    poison = [
        {"seq": 1, "ts": now, "temperature": 1e-50},  # underflows `real`: the stalled replica
        {"seq": 2, "ts": now, "temperature": 21.0, "humidity": 1e-60},
        b'{"seq": 3, "ts": %f, "temperature": NaN}' % now,
        {"seq": 2**63, "ts": now, "temperature": 21.0},  # beyond bigint
    ]
    # A value the decoder accepts but the database refuses (a constraint added behind ingestion's back):
    # its batch fails, is split until the row is alone, and only that row becomes a dead letter.
    stack.psql("ALTER TABLE readings ADD CONSTRAINT poison_probe CHECK (temperature <> 66.25) NOT VALID")
    try:
        for i in range(300):
            good.publish()
            if i % 60 == 30 and i < 240:
                item = poison[i // 60]
                poisoner.publish(item if isinstance(item, bytes) else json.dumps(item).encode())
            if i == 150:
                for seq in (10, 11, 12):
                    body = {"seq": seq, "ts": time.time(), "temperature": 66.25 if seq == 11 else 20.0}
                    poisoner.publish(json.dumps(body).encode())
        assert good.wait_acked(15) and poisoner.wait_acked(15)
        assert good.stats.acked == 300 and poisoner.stats.acked == 7
        assert eventually(lambda: len(stored_seqs(api, good.device_id)) == 300, timeout=15)
        assert eventually(lambda: len(dead_letters(api, poisoner.device_id)) == 5, timeout=15)
    finally:
        stack.psql("ALTER TABLE readings DROP CONSTRAINT IF EXISTS poison_probe")
    letters = dead_letters(api, poisoner.device_id)
    assert sorted(r["seq"] for r in api.readings(poisoner.device_id, limit=100)) == [10, 12]
    reasons = sorted(str(d["reason"]).partition(":")[0] for d in letters)
    assert reasons == ["database", "range", "range", "schema", "schema"]  # 1e-50 and 1e-60; NaN and 2**63
    refused = next(d for d in letters if str(d["reason"]).startswith("database"))
    assert "poison_probe" in str(refused["reason"]) and '"temperature": 66.25' in str(refused["payload"])
    assert all(d["topic"] == f"devices/{poisoner.device_id}/telemetry" and d["received_at"] for d in letters)
    assert counted(stack, "range") - before["range"] == 2
    assert counted(stack, "database") - before["database"] == 1
    good.close()
    poisoner.close()


def test_dead_letters_route_is_bounded_and_guarded(stack: DockerStack, api: RegistryClient) -> None:
    for params in ({"limit": 1001}, {"limit": 0}, {"before": 2**63}, {"before": 0}, {"device_id": "x\n"},
                   {"device_id": "Bad"}):
        with pytest.raises(ApiError) as caught:
            api.call("GET", "/dead-letters", **params)
        assert caught.value.status == 422, params
    anonymous = RegistryClient(stack.api_url, "not-a-token")
    with pytest.raises(ApiError) as caught:
        anonymous.call("GET", "/dead-letters")
    assert caught.value.status == 401
    page = api.call("GET", "/dead-letters", limit=1000)
    assert len(page["items"]) <= 1000
