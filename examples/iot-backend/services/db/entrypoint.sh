#!/bin/sh
# Initialise $PGDATA on first start (user, database, password from env); on later starts set
# the owner's password to the one given, so the secret is the truth even for an old volume
# (rotation is: change the secret, apply). Then run postgres in the foreground, logging to stdout. Env: POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE),
# POSTGRES_USER, POSTGRES_DB, POSTGRES_PORT, PGDATA. Arguments go to postgres, as with the official
# image (`-c name=value` sets a server setting).
set -eu
password=${POSTGRES_PASSWORD:-}
if [ -z "$password" ] && [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then password=$(cat "$POSTGRES_PASSWORD_FILE"); fi
if [ -z "$password" ] && [ -r /run/secrets/db_password ]; then password=$(cat /run/secrets/db_password); fi
unset POSTGRES_PASSWORD
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  [ -n "$password" ] || { echo "db: POSTGRES_PASSWORD is required to initialise $PGDATA" >&2; exit 1; }
  pwfile=$(mktemp)
  printf '%s\n' "$password" >"$pwfile"
  initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" -A scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  cat >>"$PGDATA/pg_hba.conf" <<HBA
host all all 0.0.0.0/0 scram-sha-256
host all all ::/0 scram-sha-256
HBA
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=/tmp" -w start >/dev/null
  if [ "$POSTGRES_DB" != postgres ]; then
    PGPASSWORD=$password psql -h /tmp -U "$POSTGRES_USER" -d postgres -v ON_ERROR_STOP=1 -q \
      -c "CREATE DATABASE \"$POSTGRES_DB\" OWNER \"$POSTGRES_USER\""
  fi
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "db: initialised $PGDATA (database $POSTGRES_DB, owner $POSTGRES_USER)"
elif [ -n "$password" ]; then
  hba=$(mktemp)
  echo "local all all trust" >"$hba"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=/tmp -c hba_file=$hba" -w start >/dev/null
  printf '\\getenv pw DB_NEW_PASSWORD\nALTER ROLE "%s" PASSWORD :'"'"'pw'"'"';\n' "$POSTGRES_USER" |
    DB_NEW_PASSWORD=$password psql -h /tmp -U "$POSTGRES_USER" -d postgres -v ON_ERROR_STOP=1 -q >/dev/null
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  rm -f "$hba"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c port="$POSTGRES_PORT" \
  -c unix_socket_directories=/var/run/postgresql -c log_destination=stderr -c logging_collector=off \
  -c shared_buffers="${POSTGRES_SHARED_BUFFERS:-256MB}" -c max_connections="${POSTGRES_MAX_CONNECTIONS:-100}" \
  -c log_min_messages=warning -c log_line_prefix='%m [%p] ' "$@"
