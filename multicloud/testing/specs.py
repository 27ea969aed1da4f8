"""Small specs the providers' tests share, as loaded specs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from multicloud.spec import Spec, spec_from_dict


def generated_token_spec(app: str, target: str, settings: Mapping[str, Any]) -> Spec:
    """One `api` service (HTTP on 8080) whose env TOKEN is the generated secret `token`, deploying to the
    target `target` with these settings (its provider among them)."""
    return spec_from_dict({
        "name": app,
        "services": {"api": {"image": "registry.example.com/api:1", "env": {"TOKEN": "${secrets.token}"},
                             "ports": [{"name": "http", "port": 8080, "protocol": "http"}]}},
        "secrets": {"token": {"generate": True}},
        "targets": {target: dict(settings)},
    })
