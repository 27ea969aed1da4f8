"""The emulators' shared data plane: cloud objects mapped onto units of real containers.

Each emulator (ACI container groups, Cloud Run revisions, ECS tasks) only translates its cloud's
objects into `Unit`s; `DataPlane` makes and keeps the containers, on the engine the Docker
provider's client reaches.
"""

from multicloud_docker.dataplane.desired import Member, Probe, Publish, Unit
from multicloud_docker.dataplane.observed import MemberState, UnitState
from multicloud_docker.dataplane.runner import DataPlane, engine_reachable

__all__ = ["DataPlane", "Member", "MemberState", "Probe", "Publish", "Unit", "UnitState", "engine_reachable"]
