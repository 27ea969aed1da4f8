"""`build:` services: build with the local Docker engine, push to the service's ECR
repository, and deploy by digest."""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Mapping
from typing import Any

from multicloud.errors import BackendUnavailableError, ProviderError, UserError
from multicloud_aws import names
from multicloud_aws.clients import guard
from multicloud_aws.context import Context


def build_and_push(ctx: Context, app: str, service: str, build: Mapping[str, Any], base_dir: str) -> str:
    """Build the image, push it to `multicloud/APP/SERVICE` and return `URI@sha256:...`.
    A failure leaves at most a local image and pushed layers; nothing is deployed."""
    name = names.repository(app, service)
    with guard(f"reading repository {name}"):
        repo = ctx.client("ecr").describe_repositories(repositoryNames=[name])["repositories"][0]
        auth = ctx.client("ecr").get_authorization_token()["authorizationData"][0]
    uri = str(repo["repositoryUri"])
    context = os.path.abspath(os.path.join(base_dir, str(build["build"])))
    if not os.path.isdir(context):
        raise UserError(f"services.{service}.build: context {context} is not a directory")
    tag = f"{uri}:latest"
    command = ["docker", "build", "-q", "-t", tag, "-f", os.path.join(context, str(build["dockerfile"]))]
    for key, value in sorted((build.get("args") or {}).items()):
        command += ["--build-arg", f"{key}={value}"]
    if build.get("target"):
        command += ["--target", str(build["target"])]
    _run([*command, context], f"building {service}")
    user, _, password = base64.b64decode(auth["authorizationToken"]).decode().partition(":")
    registry = str(auth["proxyEndpoint"])
    _run(["docker", "login", "-u", user, "--password-stdin", registry], f"logging in to {registry}", password)
    _run(["docker", "push", tag], f"pushing {tag}")
    digest = _run(["docker", "inspect", "--format", "{{index .RepoDigests 0}}", tag], f"reading the digest of {tag}")
    if "@sha256:" not in digest:
        raise ProviderError(f"push of {tag} returned no digest")
    return f"{uri}@{digest.split('@', 1)[1].strip()}"


def _run(command: list[str], doing: str, stdin: str | None = None) -> str:
    try:
        done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=1800, check=False)
    except FileNotFoundError as exc:
        raise BackendUnavailableError(f"no docker command while {doing}",
                                      hint="install Docker (or give the service an image: instead)") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-10:])
        raise ProviderError(f"docker failed while {doing}:\n{tail}")
    return done.stdout.strip()
