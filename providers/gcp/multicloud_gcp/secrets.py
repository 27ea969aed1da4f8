"""The secrets multicloud writes to Secret Manager: generated ones (`generate: true`) and those the
core composes (a database's URL). Each is a `secret/NAME` resource: secret `APP-NAME` (or the ID
`secret_names` gives), labelled with its app and target, its value's digest in an annotation —
never the value. Other secrets are references to Secret Manager secrets the user keeps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from multicloud.generated import stored_after_their_ca
from multicloud.resources import Resource, Sensitive
from multicloud.spec.backing import password_secret
from multicloud.spec.models import DerivedSecret
from multicloud.spec.targets import TargetSpec
from multicloud_gcp.api import Body
from multicloud_gcp.mapping import APP_LABEL, TARGET_LABEL
from multicloud_gcp.settings import GcpSettings

NAME_ANNOTATION = "multicloud-secret"
DIGEST_ANNOTATION = "multicloud-digest"
KEEP_ANNOTATION = "multicloud-keep"


def written_secrets(spec: TargetSpec) -> list[str]:
    """The used secrets whose values multicloud writes: generated and derived ones."""
    return [n for n in spec.used_secrets() if spec.secrets[n].generate or isinstance(spec.secrets[n], DerivedSecret)]


def secret_ids(spec: TargetSpec, settings: GcpSettings) -> dict[str, str]:
    """Spec secret name -> its Secret Manager secret ID (or path): `secret_names` first, else
    `APP-NAME` for the secrets multicloud writes and the same name for references."""
    written = set(written_secrets(spec))
    ids = {name: settings.secret_names.get(name, name) for name in spec.used_secrets()}
    for name in written:  # multicloud creates these in the target's project: an ID, not a path
        ids[name] = settings.secret_names.get(name, f"{spec.app}-{name}").rsplit("/", 1)[-1]
    return ids


def kept_secrets(spec: TargetSpec) -> set[str]:
    """The generated passwords of the databases destroy keeps (they must outlive a destroy too)."""
    return {password_secret(name) for name, resource in spec.resources.items() if resource.persistent}


def secret_resources(spec: TargetSpec, secrets: Mapping[str, str], settings: GcpSettings) -> list[Resource]:
    """One `secret/NAME` per secret multicloud writes, its value Sensitive (compared by digest); a TLS secret's
    pair after its CA (multicloud.generated.stored_after_their_ca)."""
    ids, kept = secret_ids(spec, settings), kept_secrets(spec)
    return stored_after_their_ca([
        Resource(
            "secret",
            name,
            {"secret": ids[name], "value": Sensitive.of(secrets[name], app=spec.app), "kept": name in kept},
            persistent=name in kept,
        )
        for name in written_secrets(spec)
        if name in secrets
    ], spec)


def annotations_of(resource: Resource) -> dict[str, str]:
    """The annotations a written secret carries: its spec name, its value's digest, whether kept."""
    value = resource.properties["value"]
    assert isinstance(value, Sensitive)
    found = {NAME_ANNOTATION: resource.name, DIGEST_ANNOTATION: value.digest}
    return {**found, KEEP_ANNOTATION: "true"} if resource.properties.get("kept") else found


def labels_of(app: str, target: str) -> dict[str, str]:
    """The labels that mark a secret as one of the app's, on one target."""
    return {APP_LABEL: app, TARGET_LABEL: target} if target else {APP_LABEL: app}


def secret_of(body: Body) -> Resource | None:
    """The `secret/NAME` an observed Secret Manager secret stands for (None when not multicloud's)."""
    annotations: dict[str, Any] = body.get("annotations") or {}
    labels: dict[str, Any] = body.get("labels") or {}
    name = annotations.get(NAME_ANNOTATION)
    if not name or not labels.get(APP_LABEL):
        return None
    kept = annotations.get(KEEP_ANNOTATION) == "true"
    secret_id = str(body.get("name", "")).rsplit("/", 1)[-1]
    digest = Sensitive(digest=str(annotations.get(DIGEST_ANNOTATION, "unknown")))
    return Resource(
        "secret",
        str(name),
        {"secret": secret_id, "value": digest, "kept": kept},
        persistent=kept,
        payload=body,
        target=str(labels.get(TARGET_LABEL, "")),
    )
