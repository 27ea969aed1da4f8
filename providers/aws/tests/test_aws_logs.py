"""`logs --since/--tail` on CloudWatch Logs (the emulator's, through boto3): since is CloudWatch's startTime."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from multicloud_aws import names
from multicloud_aws.provider import AwsEcsProvider


def _write(provider: AwsEcsProvider, app: str, stream: str, lines: list[tuple[int, str]]) -> None:
    client = provider.ctx.client("logs")
    group = names.log_group(app)
    with contextlib.suppress(client.exceptions.ResourceAlreadyExistsException):
        client.create_log_group(logGroupName=group)
    client.create_log_stream(logGroupName=group, logStreamName=stream)
    events = [{"timestamp": at, "message": text} for at, text in lines]
    client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


def test_tail_and_since(make_provider: Callable[..., AwsEcsProvider], app_name: str, aws: Any) -> None:
    provider = make_provider()
    base = int(time.time() * 1000) - 60_000
    _write(provider, app_name, "web/web/task1", [(base + i * 1000, f"web {i}") for i in range(6)])
    _write(provider, app_name, "db/db/task2", [(base + 500, "db 0")])

    def messages(service: str | None, **options: Any) -> list[str]:
        return [line.message for line in provider.logs(app_name, service, **options)]

    assert messages("web", tail=None) == [f"web {i}" for i in range(6)]
    assert messages("web", tail=0) == []
    assert messages("web", tail=2) == ["web 4", "web 5"]
    since = datetime.fromtimestamp((base + 3000) / 1000, UTC)
    assert messages("web", tail=None, since=since) == ["web 3", "web 4", "web 5"]
    assert messages("web", tail=1, since=since) == ["web 5"]
    assert messages(None, tail=None, since=datetime.fromtimestamp(base / 1000, UTC))[:3] == ["web 0", "db 0", "web 1"]
    # follow with tail 0 shows none of the history, then what is written afterwards
    client = provider.ctx.client("logs")

    def later() -> None:
        time.sleep(1.5)
        client.put_log_events(
            logGroupName=names.log_group(app_name), logStreamName="web/web/task1",
            logEvents=[{"timestamp": int(time.time() * 1000), "message": "web new"}],
        )

    writer = threading.Thread(target=later)
    writer.start()
    assert next(iter(provider.logs(app_name, "web", follow=True, tail=0))).message == "web new"
    writer.join()
