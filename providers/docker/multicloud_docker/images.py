"""Images: build `build:` services (skipped when the content tag exists), find `image:` ones."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from multicloud.errors import NotFoundError, ProviderError, UserError
from multicloud.resources import Resource
from multicloud_docker import labels as L
from multicloud_docker.client import guard

BUILD_TIMEOUT = 3600
Say = Callable[[str], None]


def image_exists(api: Any, ref: str) -> bool:
    """True when the engine has an image under this reference."""
    try:
        with guard(f"inspecting image {ref}"):
            api.inspect_image(ref)
    except NotFoundError:
        return False
    return True


def build(api: Any, app: str, resource: Resource, say: Say) -> None:
    """Build and tag a service image unless its content tag exists; older tags stay until
    the engine deletes them. A failed build leaves the older tags (and the containers using them)."""
    tag = str(resource.properties["tag"])
    if image_exists(api, tag):
        say(f"{tag} already built")
    else:
        say(f"building {tag}")
        payload = resource.payload or {}
        image_labels = L.owned(app, resource.key, resource.properties, resource.target)
        props = resource.properties
        with guard(f"building {tag}"):
            stream = api.build(
                path=payload["context"],
                dockerfile=payload.get("dockerfile") or props.get("dockerfile"),
                tag=tag,
                buildargs=dict(props.get("args") or {}),
                target=props.get("target"),
                labels=image_labels,
                rm=True,
                forcerm=True,
                decode=True,
                timeout=BUILD_TIMEOUT,
            )
            log: list[str] = []
            for chunk in stream:
                if "error" in chunk:
                    detail = "\n".join(line for line in log[-15:] if line.strip())
                    raise ProviderError(f"building {tag} failed: {str(chunk['error']).strip()}\n{detail}".rstrip())
                text = str(chunk.get("stream") or "")
                log.extend(text.splitlines())
                if text.startswith("Step ") and " : LABEL " not in text:
                    say(text.strip())
        say(f"built {tag}")


def remove_tags(api: Any, tags: list[str], say: Say) -> None:
    """Untag the given builds; images still used by a container lose only their tag, a tag
    already gone counts as done. A failure leaves the remaining tags for the next apply."""
    for tag in tags:
        try:
            with guard(f"removing image tag {tag}"):
                api.remove_image(tag, force=True)
            say(f"removed {tag}")
        except NotFoundError:
            pass


def ensure_pulled(api: Any, ref: str, say: Say) -> None:
    """Pull an `image:` reference only if the engine lacks it; offline, raise UserError."""
    if image_exists(api, ref):
        return
    say(f"pulling {ref}")
    repository, tag = _split(ref)
    try:
        with guard(f"pulling image {ref}"):
            api.pull(repository, tag=tag)
    except Exception as exc:
        raise UserError(
            f"image {ref} is not on the Docker host and pulling it failed: {exc}",
            hint="this machine may be offline: build or load the image locally (docker build -t / docker load), "
            "or give the service build: instead of image:",
        ) from exc
    if not image_exists(api, ref):
        raise UserError(f"image {ref} is still missing after a pull")


def pull_with(api: Any, ref: str, auth: Mapping[str, str]) -> None:
    """Log in to the reference's registry (the engine checks the credentials there: a pull by digest
    it already has would not) and pull with them; UserError naming the registry's answer when it refuses."""
    repository, tag = _split(ref)
    try:
        with guard(f"logging in to {ref.split('/', 1)[0]}"):
            api.login(auth["username"], auth["password"], registry=ref.split("/", 1)[0], reauth=True)
        with guard(f"pulling image {ref}"):
            for chunk in api.pull(repository, tag=tag, auth_config=dict(auth), stream=True, decode=True):
                if "error" in chunk:
                    raise UserError(f"pulling {ref} failed: {str(chunk['error']).strip()}")
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"pulling {ref} with the registry credentials failed: {exc}") from exc


def require_built(api: Any, ref: str) -> None:
    """Raise ProviderError when a built image vanished between its build and its use."""
    if not image_exists(api, ref):
        raise ProviderError(f"image {ref} is missing; apply again to rebuild it")


def _split(ref: str) -> tuple[str, str | None]:
    """Split an image reference into repository and tag (digests stay in the repository)."""
    if "@" in ref:
        return ref, None
    head, _, last = ref.rpartition(":")
    if head and "/" not in last:
        return head, last
    return ref, "latest"
