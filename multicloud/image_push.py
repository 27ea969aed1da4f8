"""`build:` images for a cloud registry, one path for every provider: check the context still has the
planned hash, skip what the registry already holds under that hash, else `docker build` (for
linux/amd64, what ECS Fargate, ACI and Cloud Run run) and push with a private docker config, and
return the pushed reference by digest. A failure leaves at most a local image and pushed layers."""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from multicloud import image_registry
from multicloud.build import build_hash, context_path
from multicloud.errors import BackendUnavailableError, ProviderError, UserError
from multicloud.spec.models import Build

PLATFORM = "linux/amd64"
_PUSHED = re.compile(r"digest: (sha256:[0-9a-f]{64})")
Say = Callable[[str], None]


@dataclass(frozen=True)
class Login:
    """Where and as whom to push: the registry's API base URL (scheme://host[:port]), a user and
    a password (a short-lived token: never shown), and the CA that verifies it (None: the system's)."""

    endpoint: str
    user: str
    password: str = field(repr=False)
    ca_bundle: str | None = None

    @property
    def host(self) -> str:
        """HOST[:PORT], the first part of the image references this registry holds."""
        return self.endpoint.split("://", 1)[-1].rstrip("/")


def image_form(base_dir: str, service: str, build: Build) -> dict[str, Any]:
    """The form a provider plans a `build:` image in: what it is built from, and its context hash."""
    return {"build": build.context, "dockerfile": build.dockerfile, "args": dict(sorted(build.args.items())),
            "target": build.target, "hash": build_hash(base_dir, service, build)}


def build_and_push(service: str, image: Mapping[str, Any], base_dir: str, repository: str, login: Login, *,
                   say: Say = lambda _: None) -> str:
    """Make the planned image (`image_form`) exist as REPOSITORY:HASH at the registry and return
    `REPOSITORY@sha256:...`; REPOSITORY is HOST/PATH. UserError when the context changed since the plan."""
    build = Build(context=str(image["build"]), dockerfile=str(image["dockerfile"]),
                  args=dict(image.get("args") or {}), target=image.get("target"))
    if build_hash(base_dir, service, build) != image["hash"]:
        raise UserError(f"services.{service}.build: the context changed since it was planned",
                        hint="plan again (the image is named by a hash of its context)")
    path = repository.split("/", 1)[1]
    tag = f"{repository}:{image['hash']}"
    digest = _pushed_digest(login, path, str(image["hash"]))
    if digest is None:
        say(f"building {tag}")
        _build(service, build, base_dir, tag)
        say(f"pushing {tag}")
        digest = _push(tag, login)
    else:
        say(f"{tag} is already pushed")
    return f"{repository}@{digest}"


def _pushed_digest(login: Login, path: str, tag: str) -> str | None:
    """The digest already pushed under this tag (a crashed apply's, or another app's), or None."""
    try:
        auth = image_registry.basic_auth(login.user, login.password)
        return image_registry.manifest_digest(login.endpoint, path, tag, auth, ca_bundle=login.ca_bundle)
    except (OSError, ValueError, http.client.HTTPException):
        return None  # cannot tell: build and push


def _build(service: str, build: Build, base_dir: str, tag: str) -> None:
    """docker build the context into `tag` for PLATFORM."""
    context = str(context_path(base_dir, build))
    command = ["docker", "build", "-q", "--platform", PLATFORM, "-t", tag,
               "-f", os.path.join(context, build.dockerfile)]
    for key, value in sorted(build.args.items()):
        command += ["--build-arg", f"{key}={value}"]
    if build.target:
        command += ["--target", build.target]
    _run([*command, context], f"building {service}")


def _push(tag: str, login: Login) -> str:
    """Log in with a private docker config (registry tokens never land in ~/.docker) and push; the digest."""
    with tempfile.TemporaryDirectory(prefix="multicloud-docker-") as config:
        _run(["docker", "--config", config, "login", "-u", login.user, "--password-stdin", login.endpoint],
             f"logging in to {login.endpoint}", login.password)
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
