"""`build:` services: build with the local Docker engine, push to the service's ECR
repository under the context hash as tag, and deploy by digest. A failure leaves at most a
local image and pushed layers; nothing is deployed."""

from __future__ import annotations

import base64
import http.client
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

from multicloud.build import build_hash, context_path
from multicloud.errors import BackendUnavailableError, ProviderError, UserError
from multicloud.spec.models import Build
from multicloud_aws import names, registry_api
from multicloud_aws.clients import guard
from multicloud_aws.context import Context

_PUSHED = re.compile(r"digest: (sha256:[0-9a-f]{64})")


def build_and_push(ctx: Context, app: str, service: str, image: Mapping[str, Any], base_dir: str, *,
                   say: Callable[[str], None] = lambda _: None) -> str:
    """Make the image the spec names (context hash `image["hash"]`) exist in ECR; return `URI@sha256:...`."""
    build = Build(context=str(image["build"]), dockerfile=str(image["dockerfile"]),
                  args=dict(image.get("args") or {}), target=image.get("target"))
    if build_hash(base_dir, service, build) != image["hash"]:
        raise UserError(f"services.{service}.build: the context changed since it was planned",
                        hint="plan again (the image is named by a hash of its context)")
    name = names.repository(app, service)
    with guard(f"reading repository {name}"):
        uri = str(ctx.client("ecr").describe_repositories(repositoryNames=[name])["repositories"][0]["repositoryUri"])
    with guard("getting an ECR authorization token"):
        auth = ctx.client("ecr").get_authorization_token()["authorizationData"][0]
    user, _, password = base64.b64decode(auth["authorizationToken"]).decode().partition(":")
    endpoint = str(auth["proxyEndpoint"]).rstrip("/")
    tag = f"{uri}:{image['hash']}"
    digest = _pushed_digest(endpoint, name, str(image["hash"]), registry_api.basic_auth(user, password))
    if digest is None:
        say(f"building {tag}")
        _build(service, build, base_dir, tag)
        say(f"pushing {tag}")
        digest = _push(tag, endpoint, user, password)
    else:
        say(f"{tag} is already pushed")
    return f"{uri}@{digest}"


def _pushed_digest(endpoint: str, name: str, tag: str, auth: str) -> str | None:
    """The digest already pushed under this tag (a crashed apply's, or another app's), or None."""
    try:
        return registry_api.manifest_digest(endpoint, name, tag, auth)
    except (OSError, ValueError, http.client.HTTPException):
        return None  # cannot tell: build and push


def _build(service: str, build: Build, base_dir: str, tag: str) -> None:
    """docker build the context into `tag`."""
    context = str(context_path(base_dir, build))
    command = ["docker", "build", "-q", "-t", tag, "-f", os.path.join(context, build.dockerfile)]
    for key, value in sorted(build.args.items()):
        command += ["--build-arg", f"{key}={value}"]
    if build.target:
        command += ["--target", build.target]
    _run([*command, context], f"building {service}")


def _push(tag: str, endpoint: str, user: str, password: str) -> str:
    """Log in with a private docker config (ECR tokens never land in ~/.docker) and push; return the digest."""
    with tempfile.TemporaryDirectory(prefix="multicloud-docker-") as config:
        _run(["docker", "--config", config, "login", "-u", user, "--password-stdin", endpoint],
             f"logging in to {endpoint}", password)
        output = _run(["docker", "--config", config, "push", tag], f"pushing {tag}")
    found = _PUSHED.findall(output)
    if not found:
        raise ProviderError(f"push of {tag} reported no digest")
    return str(found[-1])


def _run(command: list[str], doing: str, stdin: str | None = None) -> str:
    """Run one docker command; its stdout, or a ProviderError with the tail of its output."""
    try:
        done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=1800, check=False)
    except FileNotFoundError as exc:
        raise BackendUnavailableError(f"no docker command while {doing}",
                                      hint="install Docker (or give the service an image: instead)") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-10:])
        if "Cannot connect to the Docker daemon" in tail:
            raise BackendUnavailableError(f"the Docker engine is not running while {doing}: {tail}",
                                          hint="start dockerd (scripts/setup-engine.sh) or set DOCKER_HOST")
        raise ProviderError(f"docker failed while {doing}:\n{tail}")
    return done.stdout.strip()
