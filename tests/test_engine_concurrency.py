"""The engine's bounded concurrency and the per-app lock, against the in-memory provider."""

from __future__ import annotations

import threading
import time

import pytest

from multicloud.api import Deployment
from multicloud.errors import LockHeldError
from multicloud.lock import app_lock
from multicloud.spec import loads
from multicloud.testing import MemoryCloud, MemoryProvider
from tests.engine_shop import ENV, FAST, SPEC, deployment

# --- concurrency ---------------------------------------------------------------------------


class SlowProvider(MemoryProvider):
    """A memory provider whose applies linger until `expected` overlap (or a second passes),
    counting the most that ever ran at once."""

    def __init__(self, cloud: MemoryCloud, expected: int) -> None:
        super().__init__(cloud=cloud)
        self.expected = expected
        self.active = 0
        self.peak = 0
        self._count = threading.Condition()

    def apply(self, app, change, emit):
        with self._count:
            self.active += 1
            self.peak = max(self.peak, self.active)
            self._count.notify_all()
            if change.key.startswith("service/"):  # 12 of them: whole batches of 1 or 3
                self._count.wait_for(lambda: self.active >= self.expected, timeout=1.0)
        try:
            time.sleep(0.005)
            super().apply(app, change, emit)
        finally:
            with self._count:
                self.active -= 1


WIDE = (
    "name: wide\nservices:\n"
    + "".join(f"  s{i}: {{image: x}}\n" for i in range(12))
    + "targets:\n  test: {provider: memory}\n"
)


@pytest.mark.parametrize("limit", [1, 3])
def test_concurrency_is_bounded(cloud, limit):
    provider = SlowProvider(cloud, expected=limit)
    deploy = Deployment(loads(WIDE), "test", provider=provider, environ={}, concurrency=limit, retry=FAST)
    result = deploy.apply()
    assert result.ok and result.changed == 13
    assert provider.peak == limit


# --- the lock ------------------------------------------------------------------------------


def test_a_second_apply_while_one_runs_fails_naming_the_holder(cloud, monkeypatch):
    inside, release = threading.Event(), threading.Event()

    class Blocking(MemoryProvider):
        def apply(self, app, change, emit):
            inside.set()
            release.wait(5)
            super().apply(app, change, emit)

    first = Deployment(loads(SPEC), "test", provider=Blocking(cloud=cloud), environ=ENV, retry=FAST)
    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(first.apply()))
    thread.start()
    try:
        assert inside.wait(5)
        with pytest.raises(LockHeldError) as caught:
            deployment(cloud).apply()
        message = str(caught.value)
        assert "another apply (pid " in message
        assert "of app 'shop' to target 'test' is running" in message
        assert "hint: wait for it to finish" in message
        with pytest.raises(LockHeldError, match="another apply"):
            deployment(cloud).destroy()
    finally:
        release.set()
        thread.join(10)
    assert outcome and outcome[0].ok
    assert deployment(cloud).apply().ok  # the lock is free again


def test_lock_is_per_app_and_target():
    with app_lock("shop", "test", "destroy"):
        with app_lock("shop", "other", "apply"), app_lock("other-app", "test", "apply"):
            pass
        held = r"another destroy \(pid \d+ on .*, since \d\d:\d\d:\d\d\)"
        with pytest.raises(LockHeldError, match=held), app_lock("shop", "test", "apply"):
            pass
    with app_lock("shop", "test", "apply"):
        pass


def test_lock_files_live_in_the_state_dir(_state_dir):
    with app_lock("shop", "test/../x", "apply"):
        files = list((_state_dir / "locks").iterdir())
    assert [f.name for f in files] == ["shop.test_.._x.lock"]
