"""`multicloud exec` on ECS: ECS Exec (ExecuteCommand's session, carried by AWS's
session-manager-plugin as the AWS CLI does), only where the service has enableExecuteCommand."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from collections.abc import Sequence

from multicloud.errors import UserError
from multicloud_aws.clients import guard
from multicloud_aws.context import Context
from multicloud_aws.services import describe_service

PLUGIN = "session-manager-plugin"


def run(ctx: Context, cluster: str, service: str, command: Sequence[str], *, replica: int) -> int:
    """Open an ECS Exec session in the replica-th running task (oldest first) and hand it to the
    plugin; return the plugin's exit status (ECS Exec does not report the command's). UserError
    when the service is not deployed, lacks enableExecuteCommand, the plugin is missing or there is
    no such task; a refusal calls nothing that changes state."""
    current = describe_service(ctx, cluster, service)
    if current is None:
        raise UserError(f"ECS service {service!r} is not deployed", hint="see `multicloud status`")
    if not current.get("enableExecuteCommand"):
        raise UserError(
            f"ECS service {service!r} does not have enableExecuteCommand set, which ECS Exec needs",
            hint=f"this provider does not set it yet: `aws ecs update-service --cluster {cluster} --service {service} "
            "--enable-execute-command --force-new-deployment` does (ECS Exec also needs a task role allowing "
            "ssmmessages:CreateControlChannel, CreateDataChannel, OpenControlChannel, OpenDataChannel)",
        )
    plugin = shutil.which(PLUGIN)
    if plugin is None:
        raise UserError(f"ECS Exec needs AWS's {PLUGIN} on PATH (as the AWS CLI does)")
    client = ctx.client("ecs")
    with guard(f"listing the running tasks of {service}"):
        arns = client.list_tasks(cluster=cluster, serviceName=service, desiredStatus="RUNNING")["taskArns"]
        tasks = client.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []
    tasks = sorted((t for t in tasks if t.get("lastStatus") == "RUNNING"), key=lambda t: str(t.get("startedAt", "")))
    if not 1 <= replica <= len(tasks):
        raise UserError(f"ECS service {service!r} has no running task {replica} (running tasks: {len(tasks)})")
    task = tasks[replica - 1]
    with guard(f"starting ECS Exec in {service}"):
        session = client.execute_command(
            cluster=cluster, task=task["taskArn"], container=service, command=shlex.join(command), interactive=True
        )["session"]
    runtime = next((c.get("runtimeId", "") for c in task.get("containers", []) if c.get("name") == service), "")
    target = {"Target": f"ecs:{cluster}_{task['taskArn'].rsplit('/', 1)[-1]}_{runtime}"}
    endpoint = client.meta.endpoint_url
    return subprocess.call([plugin, json.dumps(session), ctx.region, "StartSession", "", json.dumps(target), endpoint])
