"""Generated secrets (`generate: true`): made once, kept in the target's secret store, never printed.

A provider with a secret store of its own implements `SupportsSecretStore.stored_secrets` and
writes new values through its own resources (AWS: the Secrets Manager secret the plan creates).
For the others the core keeps them in 0600 files under the machine's state directory, one folder
per provider, app and target, beside the locks (the deployed state itself lives in labels)."""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from multicloud import inputs
from multicloud.errors import UserError
from multicloud.lock import state_dir
from multicloud.resources import Resource
from multicloud.spec.certificate import CA_PARTS, SERVER_PARTS, host_name, part_name, part_names
from multicloud.spec.models import TlsPart

if TYPE_CHECKING:
    from multicloud.spec.targets import TargetSpec

GENERATED_BYTES = 24
"""Entropy of a generated secret: 24 random bytes, 32 URL-safe characters."""


@runtime_checkable
class SupportsSecretStore(Protocol):
    """A provider that keeps generated secrets in its cloud's secret store."""

    def stored_secrets(self, app: str, names: Sequence[str]) -> dict[str, str]:
        """The values of those secrets the store already holds for the app; reads only."""
        ...


class LocalSecretStore:
    """Generated secrets of one provider, app and target as 0600 files in a 0700 folder."""

    def __init__(self, provider: str, app: str, target: str, root: Path | None = None) -> None:
        safe = [re.sub(r"[^A-Za-z0-9_.-]", "_", part) for part in (provider, app, target)]
        self.directory = Path(root or state_dir(), "secrets", *safe)

    def stored_secrets(self, app: str, names: Sequence[str]) -> dict[str, str]:
        """The values already kept for these names; an unreadable file is a UserError naming it."""
        values: dict[str, str] = {}
        for name in names:
            path = self.directory / name
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                inputs.note_file(path, None)
                continue
            except OSError as exc:
                raise UserError(f"cannot read the generated secret {path}: {exc.strerror}") from exc
            inputs.note_file(path, data)
            try:
                values[name] = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UserError(f"cannot read the generated secret {path}: it is not UTF-8 text") from exc
        return values

    def keep(self, values: Mapping[str, str], *, replace: Collection[str] = ()) -> None:
        """Write new values, each created exclusively with mode 0600 (a value already there is
        kept: whoever wrote first wins), but those named in `replace`, which take the place of what is
        there in one rename; a failure leaves the files written so far (and maybe a NAME.new file)."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            for name, value in values.items():
                path = self.directory / (f"{name}.new" if name in replace else name)
                flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if name in replace else os.O_EXCL)
                try:
                    fd = os.open(path, flags, 0o600)
                except FileExistsError:
                    continue
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(value)
                if name in replace:
                    path.replace(self.directory / name)
        except OSError as exc:
            raise UserError(
                f"cannot keep generated secrets in {self.directory}: {exc.strerror}",
                hint="set MULTICLOUD_STATE_DIR to a writable directory",
            ) from exc

    def note_kept(self, values: Mapping[str, str]) -> None:
        """Note, for a compiled form being recorded, that these values are what the files will hold once the
        apply keeps them (see inputs.note_file_kept); touches no file."""
        for name, value in values.items():
            inputs.note_file_kept(self.directory / name, value.encode())

    def forget(self) -> None:
        """Remove every kept value of this provider, app and target; a failure leaves some."""
        try:
            for path in self.directory.glob("*"):
                path.unlink(missing_ok=True)
            self.directory.rmdir()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise UserError(f"cannot remove the generated secrets in {self.directory}: {exc.strerror}") from exc


def new_secret(avoid: str = "") -> str:
    """A fresh random secret value (32 URL-safe characters) holding an upper-case letter, a lower-case
    letter and a digit, and not `avoid` in any case, so that password rules asking for three kinds of
    character and no login name take it (an Azure Database for PostgreSQL administrator's, which refused
    about 1 in 650 plain draws for the kinds, and 1 in 25 for a login such as `db`)."""
    while True:
        value = secrets.token_urlsafe(GENERATED_BYTES)
        if (any(c.isupper() for c in value) and any(c.islower() for c in value) and any(c.isdigit() for c in value)
                and not (avoid and avoid.lower() in value.lower())):
            return value


def generated_values(
    store: SupportsSecretStore, app: str, names: Sequence[str], avoid: Mapping[str, str] | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """The value of each generated secret: the stored one, else a fresh one not holding `avoid[name]`;
    returned as (all values, the fresh ones still to be kept)."""
    stored = store.stored_secrets(app, names) if names else {}
    fresh = {name: new_secret((avoid or {}).get(name, "")) for name in names if name not in stored}
    return {**stored, **fresh}, fresh


def tls_values(
    store: SupportsSecretStore, spec: TargetSpec, public_names: Sequence[str], planned: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """The parts of each TLS secret the target uses: what its store holds while that still fits the secret's
    names and the target's `public_names` (see multicloud.certificates), else fresh ones; returned as (all
    values, the fresh ones still to be kept). `planned` (parts made fresh earlier and not kept yet) count as
    stored. A UserError when a secret has no name to issue for."""
    from multicloud.certificates import fresh_material

    values: dict[str, str] = {}
    fresh: dict[str, str] = {}
    own = [host for name in public_names if (host := _canonical(name))]
    for name, generate in spec.tls_secrets().items():
        parts = part_names(name)
        held = {**store.stored_secrets(spec.app, list(parts.values())), **planned}
        current = {part: held[secret] for part, secret in parts.items() if secret in held}
        names = list(dict.fromkeys([*generate.names, *own]))
        if not names:
            raise UserError(f"secrets.{name}.generate.names: give the names the certificate is for (this target "
                            f"knows none of its public names yet)")
        made = fresh_material(current, names, issuer=f"multicloud CA of {spec.app} on {spec.target}")
        fresh.update({parts[part]: value for part, value in made.items()})
        values.update({parts[part]: value for part, value in {**current, **made}.items()})
    return values, fresh


def stored_after_their_ca(resources: Sequence[Resource], spec: TargetSpec, kind: str = "secret") -> list[Resource]:
    """The resources, each `KIND/NAME_cert` and `KIND/NAME_key` of a generated TLS secret depending on the
    `KIND/NAME_ca` and `KIND/NAME_ca_key` among them, for a provider that keeps the parts as resources: the CA is
    stored first (a pair kept without its CA is issued anew, by a new CA, at the next plan), and a plan limited to
    the services that read the pair takes the CA in. Pure."""
    keys = {r.key for r in resources}

    def after_ca(resource: Resource) -> Resource:
        part = spec.secrets.get(resource.name) if resource.kind == kind else None
        if not isinstance(part, TlsPart) or part.part not in SERVER_PARTS:
            return resource
        cas = [key for ca in CA_PARTS if (key := f"{kind}/{part_name(part.of, ca)}") in keys]
        return dataclasses.replace(resource, depends_on=tuple(dict.fromkeys([*resource.depends_on, *cas])))

    return [after_ca(r) for r in resources]


def _canonical(name: str) -> str | None:
    """A public name a provider reports, as certificates name it; None for one no certificate can name."""
    try:
        return host_name(name)
    except ValueError:
        return None
