#!/usr/bin/env bash
# Create the project's virtualenv (.venv) from the lockfile: uv, then every workspace
# distribution (core + providers) with the dev tools. Idempotent; needs Python >= 3.11.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.8

say() { printf 'bootstrap: %s\n' "$*"; }
python=""
for candidate in python3.11 python3.12 python3.13 python3; do
  if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    python=$(command -v "$candidate"); break
  fi
done
[[ -n $python ]] || { echo "bootstrap: Python >= 3.11 is required (apt-get install python3)" >&2; exit 1; }
# pyenv shims re-exec through bash on every call; resolve the real interpreter once.
python=$("$python" -c 'import sys; print(sys.executable)')

uv=""
if command -v uv >/dev/null && [[ $(uv --version 2>/dev/null) == "uv $UV_VERSION"* ]]; then
  uv=$(command -v uv)
elif [[ -x .tools/bin/uv ]]; then
  uv=.tools/bin/uv
else
  say "installing uv $UV_VERSION into .tools"
  "$python" -m venv .tools
  .tools/bin/pip install -q "uv==$UV_VERSION"
  uv=.tools/bin/uv
fi
say "syncing .venv from uv.lock ($("$python" --version))"
"$uv" sync --frozen --all-packages --compile-bytecode --python "$python" -q
# the IoT services' libraries, at their image's versions, for mypy alone (examples/iot-backend/typecheck)
"$uv" sync --frozen --project examples/iot-backend/typecheck --python "$python" -q
say "ready: .venv/bin/multicloud $(.venv/bin/multicloud --version | cut -d' ' -f2)"
