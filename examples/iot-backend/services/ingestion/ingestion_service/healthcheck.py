"""Exit 0 when GET http://127.0.0.1:$PORT/healthz answers 200 (for container health checks)."""

import os
import sys
import urllib.request

try:
    with urllib.request.urlopen(f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz", timeout=3) as r:
        sys.exit(0 if r.status == 200 else 1)
except OSError:
    sys.exit(1)
