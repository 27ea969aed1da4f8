"""Exit 0 when GET http(s)://127.0.0.1:$PORT/healthz answers 200 (every HTTP service's container health check);
https when the service serves TLS (TLS_CERT or TLS_CERT_FILE set and SERVE_TLS not false; its certificate
names the public host, so it is not verified on this loopback probe)."""

import os
import ssl
import sys
import urllib.request

from iot_common.env import flag

tls = any(os.environ.get(name) for name in ("TLS_CERT", "TLS_CERT_FILE")) and flag("SERVE_TLS", True)
url = f"{'https' if tls else 'http'}://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz"
try:
    with urllib.request.urlopen(url, timeout=3, context=ssl._create_unverified_context() if tls else None) as r:  # noqa: S310, S323
        sys.exit(0 if r.status == 200 else 1)
except OSError:
    sys.exit(1)
