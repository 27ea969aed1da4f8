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
        """Subnets for tasks and the NLB: from settings, else one public subnet per Availability Zone
        of the VPC (looked up once): an NLB takes one subnet per zone, and a task with a public IP
        pulls its image only from a subnet that routes to an internet gateway. UserError when the
        VPC has no public subnet (nothing is created then)."""
        if self.settings.subnets:
            return list(self.settings.subnets)
        vpc = self.vpc()
        with self._lock:
            if self._subnets is None:
                with guard(f"listing the subnets and route tables of {vpc}"):
                    ec2 = self.client("ec2")
                    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}]).get("Subnets", [])
                    tables = ec2.describe_route_tables(
                        Filters=[{"Name": "vpc-id", "Values": [vpc]}]).get("RouteTables", [])
                chosen = public_per_zone(subnets, tables)
                if not chosen:
                    raise UserError(
                        f"VPC {vpc} has no public subnet (one whose route table sends 0.0.0.0/0 to an internet "
                        "gateway)", hint="set the target's `subnets` (private ones need a NAT gateway, and "
                        "assign_public_ip: false)")
                self._subnets = chosen
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


def public_per_zone(subnets: list[dict[str, Any]], tables: list[dict[str, Any]]) -> list[str]:
    """The first public subnet (by id) of each Availability Zone, sorted: default subnets, and those
    whose route table (their own, else the VPC's main one) routes 0.0.0.0/0 to an internet gateway."""
    main = next((t for t in tables if any(a.get("Main") for a in t.get("Associations") or [])), None)
    own = {str(a["SubnetId"]): t for t in tables for a in t.get("Associations") or [] if a.get("SubnetId")}

    def public(subnet: dict[str, Any]) -> bool:
        table = own.get(str(subnet["SubnetId"]), main) or {}
        to_internet = any(r.get("DestinationCidrBlock") == "0.0.0.0/0"
                          and str(r.get("GatewayId", "")).startswith("igw-") for r in table.get("Routes") or [])
        return bool(subnet.get("DefaultForAz")) or to_internet

    chosen: dict[str, str] = {}
    for subnet in sorted(subnets, key=lambda s: str(s["SubnetId"])):
        if public(subnet):
            chosen.setdefault(str(subnet.get("AvailabilityZone", "")), str(subnet["SubnetId"]))
    return sorted(chosen.values())
