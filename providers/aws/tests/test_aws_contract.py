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
        "port.protocol": api_port(protocol="udp"),
        "service.load_balancers": api_port(port=8082),
    }
    replace_unreachable = {
        "namespace.name": "a target setting (namespace), not the spec",
        "cluster.name": "named after the app, or a target setting (cluster)",
        "security-group.name": "named after the app",
        "security-group.vpc": "a target setting (vpc)",
        "load-balancer.name": "named after the app",
        "load-balancer.scheme": "always internet-facing",
        "load-balancer.subnets": "a target setting (subnets)",
        "discovery.name": "the service's name: renaming a service is a delete and a create",
        "discovery.namespace": "a target setting (namespace)",
        "port.target_group": "named after the app, service and port",
        "port.vpc": "a target setting (vpc)",
        "service.cluster": "named after the app, or a target setting (cluster)",
        "service.discovery": "the service's name",
    }

    @pytest.fixture
    def provider_factory(self, make_provider: Callable[..., AwsEcsProvider]) -> Callable[[], AwsEcsProvider]:
        return make_provider

    @pytest.fixture
    def provider(self, make_provider: Callable[..., AwsEcsProvider]) -> AwsEcsProvider:
        return make_provider()
