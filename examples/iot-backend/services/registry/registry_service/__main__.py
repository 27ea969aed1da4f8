"""Run the registry under uvicorn on $PORT: HTTPS when TLS_CERT and TLS_KEY (PEM, or the files
TLS_CERT_FILE and TLS_KEY_FILE name) are set, plain HTTP otherwise or when SERVE_TLS is false (where
the platform terminates TLS in front of the container: the spec's ${ports.https.tls})."""

import os
import tempfile
from pathlib import Path

from iot_common.env import flag, secret
from iot_common.web import serve

from registry_service.settings import Settings


def tls_options() -> dict[str, str]:
    """uvicorn's ssl_certfile/ssl_keyfile, the PEM copied into a private temporary folder (the
    values may come from env, as on ECS); {} for plain HTTP. Exits naming a half-given pair."""
    if not flag("SERVE_TLS", True):
        return {}
    cert, key = secret("TLS_CERT"), secret("TLS_KEY")
    if not cert and not key:
        return {}
    if not (cert and key):
        raise SystemExit("registry: TLS_CERT and TLS_KEY (or TLS_CERT_FILE and TLS_KEY_FILE) go together")
    folder = Path(tempfile.mkdtemp(prefix="registry-tls-"))
    paths = {"ssl_certfile": folder / "tls.crt", "ssl_keyfile": folder / "tls.key"}
    for path, pem in ((paths["ssl_certfile"], cert), (paths["ssl_keyfile"], key)):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(pem + "\n")
    return {name: str(path) for name, path in paths.items()}


if __name__ == "__main__":
    settings = Settings.from_env()
    serve("registry_service.app:app", settings.host, settings.port, settings.access_log, **tls_options())
