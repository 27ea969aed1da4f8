"""Generated secrets (`generate: true`): made once, kept in the target's secret store, never printed.

A provider with a secret store of its own implements `SupportsSecretStore.stored_secrets` and
writes new values through its own resources (AWS: the Secrets Manager secret the plan creates).
For the others the core keeps them in 0600 files under the machine's state directory, one folder
per provider, app and target, beside the locks (the deployed state itself lives in labels)."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from multicloud import inputs
from multicloud.errors import UserError
from multicloud.lock import state_dir

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

    def keep(self, values: Mapping[str, str]) -> None:
        """Write new values, each created exclusively with mode 0600 (a value already there is
        kept: whoever wrote first wins); a failure leaves the files written so far."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            for name, value in values.items():
                try:
                    fd = os.open(self.directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                except FileExistsError:
                    continue
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(value)
        except OSError as exc:
            raise UserError(
                f"cannot keep generated secrets in {self.directory}: {exc.strerror}",
                hint="set MULTICLOUD_STATE_DIR to a writable directory",
            ) from exc


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


def new_secret() -> str:
    """A fresh random secret value."""
    return secrets.token_urlsafe(GENERATED_BYTES)


def generated_values(
    store: SupportsSecretStore, app: str, names: Sequence[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """The value of each generated secret: the stored one, else a fresh one; returned as
    (all values, the fresh ones still to be kept)."""
    stored = store.stored_secrets(app, names) if names else {}
    fresh = {name: new_secret() for name in names if name not in stored}
    return {**stored, **fresh}, fresh
