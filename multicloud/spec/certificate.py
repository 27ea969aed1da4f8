"""A generated TLS secret in the spec (`generate: {type: tls, names: [...]}`): its shape, the names a
certificate may be issued for, and the secrets it yields (no cryptography here: see multicloud.certificates).

A TLS secret NAME yields four secrets: NAME_cert (the server certificate, PEM), NAME_key (its private
key), NAME_ca (the CA certificate, public) and NAME_ca_key (the CA's private key, which only the
target's secret store holds: no service may refer to it)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

SERVER_PARTS = ("cert", "key")
"""The parts only a service serving TLS itself needs: its certificate and key."""
CA_PARTS = ("ca", "ca_key")
"""The parts of the CA that issued the certificate."""
PARTS = (*SERVER_PARTS, *CA_PARTS)
"""The parts of a generated TLS secret, each kept as the secret NAME_PART."""
PRIVATE_PARTS = ("ca_key",)
"""Parts no service may refer to."""
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
MAX_DNS_NAME = 253


def host_name(value: str) -> str:
    """A certificate name in canonical form: an IP address (v4 or v6) as `ipaddress` writes it, or a
    lower-case DNS name (a leading `*.` for a wildcard); ValueError saying why for anything else."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    name = value.lower()
    labels = (name[2:] if name.startswith("*.") else name).split(".")
    if (
        len(name) > MAX_DNS_NAME
        or not all(_LABEL.fullmatch(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise ValueError(
            f"{value!r} is neither an IP address nor a DNS name (dot-separated labels of letters, digits and "
            "inner hyphens, at most 63 characters each and 253 in all, not ending in a number; *. in front for "
            "a wildcard; internationalised names in their xn-- form)"
        )
    return name


CertificateName = Annotated[str, AfterValidator(host_name)]


class TlsGenerate(BaseModel):
    """A generated server certificate: a private CA made once per app and target (kept in its secret
    store), and a certificate with key issued by it for `names` and the target's own public names."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["tls"] = Field(description="what to generate: tls (a CA and a server certificate issued by it)")
    names: list[CertificateName] = Field(
        default_factory=list,
        description="DNS names (*.x for a wildcard) and IP addresses the certificate is for, beside the target's "
        "own public names (local: 127.0.0.1 and localhost; aws: *.elb.REGION.amazonaws.com, which its load "
        "balancer's DNS name matches; azure: the group's FQDN; gcp: the services' run.app hosts)",
    )


def generate_form(value: Any) -> Any:
    """`generate: true` stays as written; a mapping is a TlsGenerate (with a clear error for an unknown
    `type`); anything else is refused."""
    if value is None or value is True or isinstance(value, TlsGenerate):
        return value
    if isinstance(value, Mapping):
        kind = value.get("type")
        if kind != "tls":
            raise ValueError(f"unknown type {kind!r}: give type: tls (a CA and a server certificate), "
                             "or write generate: true for a random value")
        return value
    raise ValueError("give generate: true (a random value) or generate: {type: tls, names: [...]}")


def part_name(secret: str, part: str) -> str:
    """The secret holding one part of TLS secret `secret` (e.g. tls_cert)."""
    return f"{secret}_{part}"


def part_names(secret: str) -> dict[str, str]:
    """Part -> the secret holding it, for TLS secret `secret`."""
    return {part: part_name(secret, part) for part in PARTS}


def tls_parts(secrets: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """Every secret the TLS secrets among `secrets` yield -> (the TLS secret, the part)."""
    return {part_name(name, part): (name, part) for name, secret in secrets.items()
            if isinstance(getattr(secret, "generate", None), TlsGenerate) for part in PARTS}
