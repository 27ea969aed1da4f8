#!/usr/bin/env bash
# The main job (README): on a fresh machine, set everything up, deploy the IoT backend to
# the local Docker engine with multicloud, and show devices' readings flowing through it.
# Safe to re-run: the apply converges on what already exists. Tear down with the command
# printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
SPEC=examples/iot-backend/multicloud.yaml
TLS=.demo/tls
API=https://127.0.0.1:8000

step() { printf '\n==> %s\n' "$*"; }

step "setting up: Python environment, Docker engine, base images"
scripts/bootstrap.sh
if [[ $(id -u) -eq 0 ]]; then scripts/setup-engine.sh; else sudo scripts/setup-engine.sh; fi
# the database runs postgres:15; offline (no Docker Hub) a stand-in is built from the example's own image
if [[ $(id -u) -eq 0 ]]; then scripts/postgres-image.sh; else sudo scripts/postgres-image.sh; fi

step "development CA and server certificate in $TLS (kept for re-runs; clients trust $TLS/ca.crt)"
.venv/bin/python examples/iot-backend/iotsim/devca.py "$TLS"
# the one secret the spec does not generate: the server certificate devices verify (its owner's)
IOT_TLS_CERT=$(cat "$TLS/server.crt"); IOT_TLS_KEY=$(cat "$TLS/server.key")
export IOT_TLS_CERT IOT_TLS_KEY

mc() { .venv/bin/multicloud "$@" -f "$SPEC" --target local; }
step "multicloud plan (what will change)"
mc plan
step "multicloud apply (builds the images the first time: a few minutes)"
mc apply --yes
step "multicloud status"
mc status

# the operator token multicloud generated on the first apply and keeps in the target's secret store
IOT_API_TOKEN=$(.venv/bin/python -c 'import sys; from multicloud import Deployment
print(Deployment.from_file(sys.argv[1], "local").secret("admin_token"))' "$SPEC")
export IOT_API_URL=$API IOT_API_TOKEN IOT_CA_FILE=$TLS/ca.crt
sim() { .venv/bin/python examples/iot-backend/simulate.py "$@"; }
for _ in $(seq 60); do
  curl --cacert "$TLS/ca.crt" -fsS "$API/healthz" >/dev/null 2>&1 && break
  sleep 1
done
step "3 devices publish over MQTT over TLS for 5 s (each with its own credentials; the broker's certificate verified)"
sim run --devices 3 --rate 30 --duration 5 --broker mqtts://127.0.0.1:8883 --prefix demo-tls
step "2 devices publish over MQTT over WebSockets over TLS for 3 s"
sim run --devices 2 --rate 10 --duration 3 --broker wss://127.0.0.1:8081/mqtt --prefix demo-wss
step "the readings, read back through the device registry's API"
sim readings --since 60 --limit 10
step "devices and when they were last seen"
sim devices

cat <<EOF

The IoT backend is running on the local Docker engine:
  devices connect to  mqtts://127.0.0.1:8883  or  wss://127.0.0.1:8081/mqtt  (TLS; trust $TLS/ca.crt)
  operators use       $API/docs  (token: the generated admin_token, kept by multicloud in
                      $(.venv/bin/python -c 'from multicloud.generated import LocalSecretStore
print(LocalSecretStore("docker", "iot-backend", "local").directory)'); curl --cacert $TLS/ca.crt)
See more:   .venv/bin/multicloud logs ingestion -f $SPEC --target local
Tear down:  .venv/bin/multicloud destroy -f $SPEC --target local --yes            (keeps the database and its password)
            .venv/bin/multicloud destroy -f $SPEC --target local --yes --volumes  (removes it too)
EOF
