"""`postgres` resources on Docker: a PostgreSQL container on the app's network, reached at its
resource name, its data in a named volume that destroy keeps (see multicloud.backing).

The container runs `postgres_image` (default `postgres:VERSION`, the official image; on a machine
without Docker Hub, a stand-in built offline under that tag: scripts/postgres-image.sh). It is
configured as the official image is: POSTGRES_USER, POSTGRES_DB and POSTGRES_PASSWORD_FILE (the
generated password, a secret file), data in PGDATA=/var/lib/postgresql/data.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from multicloud.resources import Resource
from multicloud.spec.backing import Address, Postgres, password_secret
from multicloud.spec.models import HealthCheck, Port, Resources, Service, VolumeMount
from multicloud.spec.placeholders import default_secret_file
from multicloud.spec.targets import TargetSpec
from multicloud_docker.labels import DATA_VOLUME, volume_name
from multicloud_docker.settings import DockerSettings

PORT = 5432
DATA = "/var/lib/postgresql/data"
TIER_LIMITS = {"small": (1.0, 1024**3), "medium": (2.0, 4 * 1024**3), "large": (4.0, 8 * 1024**3)}
"""cpu and memory limits per tier; cpu is capped at the machine's cores (the engine refuses more)."""
ServiceRenderer = Callable[[str, Service, str], dict[str, Any]]


def address(name: str) -> Address:
    """Services reach database `name` at its network alias (its name) on PostgreSQL's port."""
    return Address(name, PORT)


def data_volume(name: str) -> str:
    """The volume resource holding database `name`'s data (`.` keeps it apart from spec volumes)."""
    return f"{DATA_VOLUME}{name}"


def as_service(name: str, db: Postgres, image: str) -> Service:
    """The container a database runs as, written as a service of the spec."""
    user, database = db.user_name(name), db.database_name(name)
    cpu, memory = TIER_LIMITS[db.tier]
    service = Service(
        image=image,
        env={"POSTGRES_USER": user, "POSTGRES_DB": database, "PGDATA": DATA,
             "POSTGRES_PASSWORD_FILE": default_secret_file(password_secret(name))},
        secrets=[password_secret(name)],
        ports=[Port(name="postgres", port=PORT, protocol="tcp")],
        resources=Resources(cpu=min(cpu, float(os.cpu_count() or 1)), memory=memory),
        healthcheck=HealthCheck(command=["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(PORT), "-U", user,
                                         "-d", database], interval=1.0, timeout=5.0, retries=60),
    )
    # the data volume is the provider's own (not an Identifier of the spec's volumes)
    return service.model_copy(update={"volumes": [VolumeMount.model_construct(source=data_volume(name), target=DATA,
                                                                                read_only=False)]})


def resources(spec: TargetSpec, settings: DockerSettings, network: str, render: ServiceRenderer) -> list[Resource]:
    """The data volume and the container of each database; `render` gives a service's properties."""
    found: list[Resource] = []
    for name, db in spec.resources.items():
        volume = data_volume(name)
        props = {"name": volume_name(spec.app, volume), "driver": "local", "postgres": db.version}
        found.append(Resource("volume", volume, props, replace_on=frozenset(props), persistent=db.deletion != "delete"))
        image = settings.postgres_image.format(version=db.version)
        container = render(name, as_service(name, db, image), image)
        container["deletion"] = db.deletion  # labels cannot change: a new setting means a new container
        found.append(Resource(
            "postgres", name, container, depends_on=(network, f"volume/{volume}"),
            replace_on=frozenset(container) - {"replicas"},
            # one data directory cannot serve two servers: the old one stops first
            replace_mode="delete-before-create",
        ))
    return found
