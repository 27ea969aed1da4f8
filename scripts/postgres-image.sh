#!/usr/bin/env bash
# Usage: scripts/postgres-image.sh [--check]
# Makes sure the Docker engine has postgres:15, the image a `postgres` resource runs on the docker
# target (postgres:VERSION, the official image). Docker Hub is out of reach here, so a stand-in is
# built offline from examples/iot-backend/services/db (Debian's PostgreSQL 15 on the local
# debian:bookworm-slim stand-in, configured like the official image: POSTGRES_USER, POSTGRES_DB,
# POSTGRES_PASSWORD[_FILE], PGDATA). Idempotent: an existing postgres:15 is kept.
#   --check   exit 1 unless the image is there; build nothing
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=postgres:15
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "postgres-image: $IMAGE present"; exit 0
fi
[[ ${1:-} == --check ]] && { echo "postgres-image: $IMAGE missing"; exit 1; }
echo "postgres-image: building the stand-in $IMAGE from examples/iot-backend/services/db"
docker build -q -t "$IMAGE" --label multicloud.stand-in=examples/iot-backend/services/db \
  examples/iot-backend/services/db >/dev/null
echo "postgres-image: $IMAGE built"
