"""The provider contract suite, run by aws-ecs against the emulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from multicloud_aws.provider import AwsEcsProvider

from multicloud.testing.contract import ProviderContract


def api_port(**fields: Any) -> Callable[[dict[str, Any]], None]:
    """A spec edit that changes the contract api's public port."""
    return lambda data: data["services"]["api"]["ports"][0].update(fields)


class TestAwsEcsContract(ProviderContract):
    replace_edits = {
        "port.port": api_port(port=8081),
        "port.target_group": api_port(port=8082),
    }
    # target settings, not the spec: each converges in one apply in test_aws_replace.py
    replace_unreachable = {
        "namespace.name": "a target setting (namespace): test_aws_replace",
        "cluster.name": "named after the app; the cluster setting moves services instead: test_aws_replace",
        "security-group.name": "named after the app",
        "security-group.vpc": "a target setting (vpc): test_aws_replace",
        "load-balancer.name": "named after the app and its placement (vpc, subnets): test_aws_replace",
        "load-balancer.scheme": "always internet-facing",
        "load-balancer.subnets": "a target setting (subnets): test_aws_replace",
        "discovery.name": "the service's name: renaming a service is a delete and a create",
        "discovery.namespace": "a target setting (namespace): test_aws_replace",
        "port.protocol": "public ports are TCP (public UDP is refused at plan): test_aws_realism",
        "port.vpc": "a target setting (vpc): test_aws_replace",
        "port.load_balancer": "follows the NLB's placement (vpc, subnets): test_aws_replace",
        "service.cluster": "a target setting (cluster): test_aws_replace",
    }

    @pytest.fixture
    def provider_factory(self, make_provider: Callable[..., AwsEcsProvider]) -> Callable[[], AwsEcsProvider]:
        return make_provider

    @pytest.fixture
    def provider(self, make_provider: Callable[..., AwsEcsProvider]) -> AwsEcsProvider:
        return make_provider()
