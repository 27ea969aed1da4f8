"""What every AWS operation of one provider shares: clients, settings, the network it
resolves once, and reads of objects that cannot have changed since."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from multicloud.errors import UserError
from multicloud_aws import names
from multicloud_aws.clients import ClientFactory, guard
from multicloud_aws.settings import AwsSettings

TAGGED_TYPES = ["ecs:cluster", "ecs:service", "elasticloadbalancing:loadbalancer",
                "elasticloadbalancing:targetgroup", "secretsmanager:secret", "logs", "ec2:security-group"]
"""Resource types found through the Resource Groups Tagging API (task definitions are not:
their revisions would crowd the pages; services say which revision they run)."""


class Context:
    """Clients and lookups for one target; thread-safe, as the engine applies in parallel."""

    def __init__(self, settings: AwsSettings, factory: ClientFactory) -> None:
        self.settings = settings
        self._factory = factory
        self._lock = threading.Lock()
        self._vpc: str | None = None
        self._subnets: list[str] | None = None
        self._known: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        """A boto3 client for an AWS service."""
        return self._factory(service)

    @property
    def region(self) -> str:
        """The region calls go to (settings, else the AWS configuration)."""
        if self.settings.region:
            return self.settings.region
        region = self.client("ecs").meta.region_name
        if not region:
            raise UserError("no AWS region", hint="set the target's `region` or AWS_REGION")
        return str(region)

    @property
    def partition(self) -> str:
        """The ARN partition of the region (aws, aws-cn, aws-us-gov)."""
        region = self.region
        return "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"

    def cached(self, key: str, read: Callable[[], Any]) -> Any:
        """What `read()` returned for `key` earlier in this process, else read it now. Only for
        what never changes (a task definition revision, by ARN); filled by reads only, so no
        result depends on what `desired` rendered or on call order."""
        with self._lock:
            if key in self._known:
                return self._known[key]
        value = read()
        with self._lock:
            self._known[key] = value
        return value

    def vpc(self) -> str:
        """The VPC: from settings, else the region's default VPC (looked up once)."""
        if self.settings.vpc:
            return self.settings.vpc
        with self._lock:
            if self._vpc is None:
                with guard("looking up the default VPC"):
                    found = self.client("ec2").describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])
                vpcs = found.get("Vpcs", [])
                if not vpcs:
                    raise UserError(f"region {self.region} has no default VPC",
                                    hint="set the target's `vpc` and `subnets` settings")
                self._vpc = str(vpcs[0]["VpcId"])
            return self._vpc

    def subnets(self) -> list[str]:
        """Subnets for tasks and the NLB: from settings, else the VPC's (looked up once)."""
        if self.settings.subnets:
            return list(self.settings.subnets)
        vpc = self.vpc()
        with self._lock:
            if self._subnets is None:
                with guard(f"listing the subnets of {vpc}"):
                    found = self.client("ec2").describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])
                subnets = found.get("Subnets", [])
                defaults = [s for s in subnets if s.get("DefaultForAz")] or subnets
                if not defaults:
                    raise UserError(f"VPC {vpc} has no subnets", hint="set the target's `subnets` setting")
                self._subnets = sorted(str(s["SubnetId"]) for s in defaults)
            return list(self._subnets)

    def tagged(self, app: str, *, key: str | None = None,
               types: list[str] | None = None) -> Iterator[tuple[str, dict[str, str]]]:
        """(ARN, tags) of every object tagged with the app (and resource key), through the
        tagging API."""
        client = self.client("resourcegroupstaggingapi")
        filters = [{"Key": names.TAG_APP, "Values": [app]}]
        if key:
            filters.append({"Key": names.TAG_KEY, "Values": [key]})
        token = ""
        while True:
            with guard(f"listing the resources tagged {names.TAG_APP}={app}"):
                page = client.get_resources(
                    TagFilters=filters,
                    ResourceTypeFilters=types or TAGGED_TYPES,
                    ResourcesPerPage=100,
                    PaginationToken=token,
                )
            for item in page.get("ResourceTagMappingList", []):
                yield str(item["ResourceARN"]), names.tag_dict(item.get("Tags"))
            token = page.get("PaginationToken") or ""
            if not token:
                return


def chunks(items: list[str], size: int) -> Iterator[list[str]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def one(mapping: Mapping[str, Any], *path: str) -> Any:
    """mapping[path[0]][path[1]]..., or None where a step is missing."""
    value: Any = mapping
    for step in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(step)
    return value
