"""The aws emulator's data plane: ECS services run as real containers on the local Docker engine.

The shared runner (multicloud_docker.dataplane) makes the containers; this package only maps
ECS onto it: a task is a unit on its VPC's network (`tasks`), the service scheduler keeps
desiredCount of them running (`scheduler`; their deployments' bookkeeping: `deployments`), NLB
listeners forward from a loopback address of the NLB's own to healthy targets (`nlb`), awslogs
copies output to CloudWatch Logs (`awslogs`), and RDS for PostgreSQL instances are real
PostgreSQL servers on their VPC's network (`rds`). It runs the services, NLBs and instances
created through one emulator server (`servers`), so emulators in one process keep to their own.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from multicloud_aws.dataplane.nlb import balancer_address

if TYPE_CHECKING:
    from multicloud_aws.dataplane.nlb import Balancers
    from multicloud_aws.dataplane.scheduler import Scheduler

__all__ = ["EcsDataPlane", "balancer_address", "start"]
NOTE = ("data plane: ECS services run their tasks as real containers on the local Docker engine (one address "
        "each on their VPC's network, answering to their Cloud Map names); an NLB's DNS name stands for a "
        "loopback address of its own (DescribeLoadBalancers' LoadBalancerAddresses, `multicloud endpoints`; "
        "multicloud_aws.dataplane.balancer_address(DNS name, AWS_ENDPOINT_URL); in no DNS) where its TCP and TLS "
        "listeners listen at their ports")
CHORES = 0.5
"""Seconds between two rounds of listener updates, health checks and log copies."""


class EcsDataPlane:
    """A started data plane for the services created through the emulator server on `port`."""

    def __init__(self, plane: Any, port: int) -> None:
        from multicloud_aws.dataplane import patches, rds, servers
        from multicloud_aws.dataplane.nlb import Balancers
        from multicloud_aws.dataplane.scheduler import Scheduler

        self.plane = plane
        self.rds = rds.RdsServers(plane, port)
        rds.attach(port, self.rds)
        self.port = port
        self.balancers: Balancers = Balancers(str(port))
        self.scheduler: Scheduler = Scheduler(plane, self.balancers).start()
        patches.report_health(self.balancers)
        servers.attach_runner(port, self.scheduler)
        self._stopping = threading.Event()
        self._chores = threading.Thread(target=self._loop, name="ecs-chores", daemon=True)
        self._chores.start()

    def _loop(self) -> None:
        """Listeners, health checks and log copies, until close()."""
        while not self._stopping.wait(CHORES):
            try:
                self.balancers.sync()
                for task in self.scheduler.running():
                    self.scheduler.shipper.ship(task)
            except Exception:  # noqa: S112  a moto object changed under the round: the next one sees it
                continue

    def network(self, vpc_id: str) -> tuple[str, str]:
        """The host's address on a VPC's network (where tasks reach services of this machine) and its subnet."""
        address, subnet = self.plane.network(f"vpc-{vpc_id}")
        return str(address), str(subnet)

    def close(self) -> None:
        """Stop scheduling and remove every container, network and volume the data plane made."""
        from multicloud_aws.dataplane import patches, rds, servers

        rds.attach(self.port, None)
        servers.attach_runner(self.port, None)
        patches.report_health(None)
        self._stopping.set()
        self._chores.join(timeout=30)
        self.scheduler.stop()
        self.balancers.close()
        self.plane.close()


def start(port: int) -> tuple[EcsDataPlane | None, str]:
    """A started data plane and a note, or None and why not (no engine, no multicloud-docker)."""
    from multicloud.emulators import start_data_plane

    plane, why = start_data_plane("aws")
    if plane is None:
        return None, str(why)
    try:
        return EcsDataPlane(plane, port), NOTE
    except BaseException:
        plane.close()
        raise
