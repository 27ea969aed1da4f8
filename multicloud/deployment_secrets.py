"""The secrets side of a Deployment (multicloud.api): every used secret's value (read from its source,
generated and kept in the target's secret store, or composed), the generated ones kept when an apply
starts, the CA certificate of a generated TLS secret, and one secret's value for a deploy script."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from multicloud import inputs
from multicloud.backing import connection_urls
from multicloud.certificates import renewal_due
from multicloud.contract import Provider, SupportsPublicNames
from multicloud.errors import SpecError, UserError, spec_finding
from multicloud.generated import LocalSecretStore, SupportsSecretStore, generated_values, tls_values
from multicloud.settings import locate
from multicloud.spec.certificate import PRIVATE_PARTS, part_name
from multicloud.spec.models import Spec, TlsPart
from multicloud.spec.targets import TargetSpec, read_secrets


class DeploymentSecrets:
    """What a Deployment does with secret values. The Deployment gives the spec, the target, the app's
    name, the target's spec and provider, the environment secrets are read from (None: this process's),
    the fresh values generated and not kept yet, and when the first TLS certificate used is due."""

    spec: Spec
    target: str
    _environ: Mapping[str, str] | None
    _fresh_secrets: dict[str, str]
    renewal_due: datetime | None

    @property
    def app(self) -> str:
        """The app's name on the target (the Deployment's)."""
        raise NotImplementedError

    @property
    def target_spec(self) -> TargetSpec:
        """The spec as the target runs it (the Deployment's)."""
        raise NotImplementedError

    @property
    def provider(self) -> Provider:
        """The target's provider (the Deployment's)."""
        raise NotImplementedError

    def _secret_values(self) -> dict[str, str]:
        """Every used secret's value: read from its source, generated (the stored value, else a
        fresh one that apply keeps), or composed (a resource's URL, from its generated password)."""
        environ = inputs.environ() if self._environ is None else self._environ
        values = read_secrets(self.target_spec, environ)
        store = self._secret_store()
        generated, fresh = generated_values(
            store, self.app, self.target_spec.generated_secrets(), self.target_spec.password_logins()
        )
        # a fresh value already planned (or handed out by secret()) stays the one apply keeps
        planned = self._fresh_secrets
        self._fresh_secrets = {name: planned.get(name, value) for name, value in fresh.items()}
        values.update({**generated, **self._fresh_secrets})
        if self.target_spec.tls_secrets():
            tls, fresh = self._tls_values(store, planned)
            self._fresh_secrets.update({**{n: v for n, v in planned.items() if n in tls}, **fresh})
            values.update(tls)
            certificates = [tls[part_name(name, "cert")] for name in self.target_spec.tls_secrets()]
            self.renewal_due = min(renewal_due(pem) for pem in certificates)
        if isinstance(store, LocalSecretStore):
            store.note_kept(self._fresh_secrets)  # a compiled form of this plan holds once the apply keeps them
        used = set(self.target_spec.used_secrets())
        return {**values, **{k: v for k, v in connection_urls(self.target_spec, values).items() if k in used}}

    def _tls_values(self, store: SupportsSecretStore, planned: Mapping[str, str]) -> tuple[dict[str, str],
                                                                                           dict[str, str]]:
        """The parts of the TLS secrets the target uses and the fresh ones among them (see
        multicloud.generated.tls_values); a SpecError at the secret for one with no name to issue for."""
        names = self.provider.public_names(self.target_spec) if isinstance(self.provider, SupportsPublicNames) else []
        try:
            return tls_values(store, self.target_spec, names, planned)
        except UserError as exc:
            finding = spec_finding(exc.message)
            if type(exc) is not UserError or finding is None:
                raise
            raise SpecError(locate(self.spec.source, (), [finding])) from exc

    def certificate_authority(self, name: str | None = None) -> str:
        """The CA certificate (PEM) of the generated TLS secret `name` (None: the only one the target uses)
        as the target's secret store holds it, for devices and operators to trust; UserError when the target
        uses no such secret or holds no CA yet (apply makes it). Reads only."""
        used = self.target_spec.tls_secrets()
        if name is None and len(used) == 1:
            name = next(iter(used))
        if name not in used:
            listed = ", ".join(used) or "none"
            which = "name one" if name is None else f"no {name!r} among them"
            raise UserError(f"target {self.target!r} uses these generated TLS secrets: {listed} ({which})")
        ca = part_name(name, "ca")
        stored = self._secret_store().stored_secrets(self.app, [ca])
        if ca not in stored:
            raise UserError(f"target {self.target!r} holds no CA for secrets.{name} yet",
                            hint="`multicloud apply` makes it (and keeps it in the target's secret store)")
        return stored[ca]

    def secret(self, name: str) -> str:
        """The value this target uses for a secret the spec's services use (read from its source, or the
        generated one its store keeps, e.g. an operator token a deploy script hands to a client); UserError
        for a name no service here uses. multicloud itself never prints it."""
        if isinstance(part := self.target_spec.secrets.get(name), TlsPart) and part.part in PRIVATE_PARTS:
            raise UserError(f"secret {name!r} is the CA's private key of secrets.{part.of}: it never leaves the "
                            "target's secret store")
        values = self._secret_values()
        if name not in values:
            raise UserError(f"no secret {name!r} is used on target {self.target!r} (used: {', '.join(values)})")
        return values[name]

    def _secret_store(self) -> SupportsSecretStore:
        """The provider when it keeps secrets itself, else the machine-local store for this target."""
        if isinstance(self.provider, SupportsSecretStore):
            return self.provider
        return LocalSecretStore(self.provider.name, self.app, self.target)

    def _keep_fresh_secrets(self) -> None:
        """Store the secrets this deployment generated (locally kept ones; providers keep theirs, by the
        plan's own resources) and forget them as fresh: the next plan reads them from the store."""
        store = self._secret_store()
        if self._fresh_secrets and isinstance(store, LocalSecretStore):
            renewed = [n for n in self._fresh_secrets if isinstance(self.target_spec.secrets.get(n), TlsPart)]
            store.keep(self._fresh_secrets, replace=renewed)
        self._fresh_secrets = {}
