#!/usr/bin/env bash
# The IoT backend end to end on one target (local | aws | azure | gcp): starts what the target needs
# (the virtualenv, the Docker engine; for aws, azure and gcp the emulator with its data plane, which
# also serves the spec's db as RDS, a flexible server or Cloud SQL), applies the example's spec, registers devices through the registry, publishes QoS 1
# readings over MQTT over TLS (gcp: WebSockets over TLS), reads every acknowledged reading back
# through the API, re-plans (empty), destroys, and checks nothing is left. Prints the wall time.
set -euo pipefail
cd "$(dirname "$0")/../.."
target=${1:-}
case $target in
  local|aws|azure|gcp) ;;
  *) echo "usage: examples/iot-backend/e2e.sh local|aws|azure|gcp" >&2; exit 2 ;;
esac
[[ -x .venv/bin/python ]] || scripts/bootstrap.sh
if ! scripts/setup-engine.sh --check >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]]; then scripts/setup-engine.sh; else sudo scripts/setup-engine.sh; fi
fi
scripts/postgres-image.sh >/dev/null  # the db resource's postgres:15 (an offline stand-in)
start=$(date +%s)
.venv/bin/python examples/iot-backend/e2e.py "$target"
echo "e2e.sh $target: wall time $(( $(date +%s) - start )) s"
