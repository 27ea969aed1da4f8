"""`build:` services on ACI: pushed to the Azure Container Registry the target's `acr` setting names
and deployed by digest, the group pulling with the registry's credentials. ACR's own login: the
ARM token is exchanged at `https://<login server>/oauth2/exchange` for a refresh token, which is
the password of user 00000000-0000-0000-0000-000000000000 for `docker login` and for the group's
imageRegistryCredentials. Imports no Azure SDK."""

from __future__ import annotations

import base64
import copy
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from multicloud.errors import ProviderError, RetryableError, UserError
from multicloud.image_push import Login, build_and_push
from multicloud.translate import unreachable
from multicloud_azure.api import AciApi, Json
from multicloud_azure.settings import AzureSettings

API_VERSION = "2023-07-01"
TOKEN_USER = "00000000-0000-0000-0000-000000000000"  # noqa: S105 - ACR's fixed user name for refresh tokens
ACCESS_HINT = "the deploying identity needs the AcrPush role on the registry (az role assignment create --role AcrPush)"


def repository(app: str, service: str) -> str:
    """The ACR repository a service's builds are pushed to."""
    return f"multicloud/{app}/{service}"


def built(item: Mapping[str, Any]) -> bool:
    """Whether a container of a rendered body still carries a `build:` image (not yet pushed)."""
    return isinstance(item["properties"].get("image"), Mapping)


def push_builds(api: AciApi, settings: AzureSettings, app: str, body: Mapping[str, Any], base_dir: str, *,
                say: Callable[[str], None]) -> Json:
    """The body to PUT: a copy whose `build:` images are pushed to the ACR and named by digest, with
    the registry's refresh token in imageRegistryCredentials (the body itself when nothing builds).
    A failure leaves pushed layers at most; nothing is PUT."""
    if not any(built(item) for item in body["properties"]["containers"]):
        return dict(body)
    if settings.acr is None:
        raise UserError("acr: `build:` services on azure-aci need the target's acr setting")
    server, refresh = api.registry_login(settings.acr)
    login = Login(f"https://{server}", TOKEN_USER, refresh, settings.ca_bundle)
    result: Json = copy.deepcopy(dict(body))
    props = result["properties"]
    for item in props["containers"]:
        if built(item):
            name = str(item["name"])
            item["properties"]["image"] = build_and_push(
                name, item["properties"]["image"], base_dir, f"{server}/{repository(app, name)}", login, say=say)
    others = [c for c in props.get("imageRegistryCredentials") or [] if c.get("server") != server]
    props["imageRegistryCredentials"] = [*others, {"server": server, "username": TOKEN_USER, "password": refresh}]
    return result


def exchange(server: str, arm_token: str, ca_bundle: str | None) -> str:
    """ACR's refresh token for an ARM access token (POST /oauth2/exchange, grant_type=access_token);
    UserError when ACR refuses the identity, RetryableError when it is busy."""
    form = {"grant_type": "access_token", "service": server, "access_token": arm_token}
    tenant = _tenant(arm_token)
    if tenant:
        form["tenant"] = tenant
    request = urllib.request.Request(
        f"https://{server}/oauth2/exchange", data=urlencode(form).encode(), method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else None
    doing = f"exchanging the ARM token for an ACR refresh token at {server}"
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as response:  # noqa: S310
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise UserError(f"ACR {server} refused the ARM token while {doing} (HTTP {exc.code})",
                            hint=ACCESS_HINT) from exc
        if exc.code == 429 or exc.code >= 500:
            raise RetryableError(f"ACR {server} answered HTTP {exc.code} while {doing}") from exc
        raise ProviderError(f"ACR {server} answered HTTP {exc.code} while {doing}") from exc
    except (OSError, ValueError) as exc:
        raise unreachable(f"ACR {server}", doing, exc, "check network access to the registry "
                          "(and the target's ca_bundle for a private CA)") from exc
    token = answer.get("refresh_token") if isinstance(answer, dict) else None
    if not token:
        raise ProviderError(f"ACR {server} gave no refresh token while {doing}")
    return str(token)


def _tenant(token: str) -> str | None:
    """The `tid` claim of a JWT access token (ACR wants the tenant), or None for an opaque token."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    tid = claims.get("tid") if isinstance(claims, dict) else None
    return str(tid) if tid else None
