"""`build:` services: build with the local Docker engine, push to the service's ECR repository
under the context hash as tag (multicloud.image_push), and deploy by digest. A failure leaves at
most a local image and pushed layers; nothing is deployed."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

from multicloud.image_push import Login
from multicloud.image_push import build_and_push as push_image
from multicloud_aws import names
from multicloud_aws.clients import guard
from multicloud_aws.context import Context


def build_and_push(ctx: Context, app: str, service: str, image: Mapping[str, Any], base_dir: str, *,
                   say: Callable[[str], None] = lambda _: None) -> str:
    """Make the image the spec names (context hash `image["hash"]`) exist in ECR; return `URI@sha256:...`."""
    name = names.repository(app, service)
    with guard(f"reading repository {name}"):
        uri = str(ctx.client("ecr").describe_repositories(repositoryNames=[name])["repositories"][0]["repositoryUri"])
    with guard("getting an ECR authorization token"):
        auth = ctx.client("ecr").get_authorization_token()["authorizationData"][0]
    user, _, password = base64.b64decode(auth["authorizationToken"]).decode().partition(":")
    login = Login(str(auth["proxyEndpoint"]).rstrip("/"), user, password)
    return push_image(service, image, base_dir, uri, login, say=say)
