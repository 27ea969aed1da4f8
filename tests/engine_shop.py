"""The shop spec and the helpers the engine tests share (test_engine*.py), run against the
stateful in-memory provider through the Python API."""

from __future__ import annotations

from multicloud.api import Deployment
from multicloud.retry import RetryPolicy
from multicloud.spec import loads
from multicloud.testing import MemoryCloud, MemoryProvider

SECRET = "db-pa55word-PLAINTEXT"
ENV = {"DB_PASSWORD": SECRET}
FAST = RetryPolicy(attempts=4, base_delay=0)

SPEC = """\
name: shop
services:
  db:
    image: postgres:16
    ports: [{name: pg, port: 5432}]
    env: {POSTGRES_PASSWORD: "${secrets.db_password}"}
    volumes: ["pgdata:/var/lib/postgresql/data"]
  api:
    image: shop/api:1
    ports: [{name: http, port: 8080, protocol: http, expose: public}]
    env: {DB_URL: "postgres://shop:${secrets.db_password}@${services.db.host}:${services.db.port}/shop", LEVEL: info}
    depends_on: [db]
  web:
    image: shop/web:1
    ports: [{name: http, port: 80, protocol: http, expose: public}]
    env: {API: "${services.api.url}"}
    depends_on: [api]
  cache:
    image: redis:7
    ports: [{name: redis, port: 6379}]
secrets:
  db_password: {from_env: DB_PASSWORD}
volumes:
  pgdata:
targets:
  test: {provider: memory}
"""


def edit(text: str, old: str, new: str) -> str:
    """The text with `old` (which must be there) replaced by `new`."""
    assert old in text
    return text.replace(old, new)


def deployment(cloud: MemoryCloud, text: str = SPEC, **kwargs) -> Deployment:
    """A Deployment of the spec to target `test` of the memory provider on `cloud`."""
    kwargs.setdefault("retry", FAST)
    return Deployment(loads(text), "test", provider=MemoryProvider(cloud=cloud), environ=ENV, **kwargs)


def outcomes(result) -> dict[str, str]:
    """Each step's outcome by resource key."""
    return {s.key: s.outcome for s in result.steps}


ALL = {"network/shop", "volume/pgdata", "service/db", "service/api", "service/web", "service/cache"}
