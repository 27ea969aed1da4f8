"""50 services: a no-op re-apply makes no mutating call, and its reads grow only by the one
health poll per service the engine makes (observe reads a fixed number of pages)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from multicloud_aws.provider import AwsEcsProvider

from bench.aws_apply import spec


@pytest.mark.slow
def test_noop_reapply_of_50_services_reads_little(make_provider: Callable[..., AwsEcsProvider], app_name: str,
                                                  deploy: Any, calls: Any, tagged: Any) -> None:
    provider = make_provider()
    deployment = deploy(spec(app_name, 50), provider, {"TOKEN": "scale-token"})
    deployment.concurrency = 8
    try:
        assert deployment.apply().ok
        calls.clear()
        assert deployment.apply().changed == 0
        assert calls.mutations() == []
        # observe reads a fixed number of pages (DescribeServices by tens, one batched describe per kind, 3 for
        # databases: their security groups, subnet groups and instances); then one health read per service (an
        # empty plan still waits for what is not healthy yet: issue 10)
        health = [c for c in calls.reads() if c == ("ecs", "DescribeServices")]
        assert len(calls.reads()) - len(health) <= 16 and len(health) <= 50 // 10 + 50, calls.reads()
        assert ("ecs", "DescribeServices") in calls.reads()
    finally:
        deployment.destroy()
    assert tagged(provider, app_name) == []
