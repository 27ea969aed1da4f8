#!/usr/bin/env bash
# The test command (README): sets up everything the tests need on a fresh machine, then
# runs the whole suite (core + providers) against real services. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
# Debian's Chromium and its driver for the dashboard's browser test (examples/iot-backend/tests/test_dashboard.py); zsh, fish and tmux
# for the shell-completion and progress-view tests (tests/test_completion.py, tests/test_progress.py); psql for the
# emulated managed PostgreSQL tests (providers/azure/tests/test_azure_flexible.py, providers/gcp/tests/test_gcp_cloudsql.py)
export MULTICLOUD_APT_EXTRA="${MULTICLOUD_APT_EXTRA:-} chromium chromium-driver zsh fish tmux postgresql-client"
if [[ ${MULTICLOUD_SKIP_ENGINE:-0} != 1 ]]; then
  if [[ $(id -u) -eq 0 ]]; then
    scripts/setup-engine.sh
    scripts/postgres-image.sh
  else
    sudo env MULTICLOUD_APT_EXTRA="$MULTICLOUD_APT_EXTRA" scripts/setup-engine.sh
    sudo scripts/postgres-image.sh
  fi
fi
set +e
.venv/bin/pytest "$@"
status=$?
set -e
if [[ $status -eq 5 ]]; then
  echo "test: pytest collected no tests; that is a failure here" >&2
  exit 1
fi
exit $status
