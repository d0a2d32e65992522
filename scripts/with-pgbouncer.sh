#!/usr/bin/env bash
# Run a command with the database reached through a private PgBouncer in transaction mode
# (Debian's package; its own service stays stopped), as production may (docs/scaling.md).
#
#   scripts/with-pgbouncer.sh <command> [args...]
#
# PgBouncer listens on 127.0.0.1:$PGBOUNCER_PORT (default 6432) and pools connections to
# PostgreSQL at $PGBOUNCER_UPSTREAM (default 127.0.0.1:5432, user postgres, trusted), with
# its configuration and log in a temporary directory removed afterwards. The command runs
# with DATABASE_URL=postgres://postgres@127.0.0.1:$PGBOUNCER_PORT/${PGBOUNCER_DATABASE:-postgres}
# and DATABASE_POOLER=pgbouncer. With TEST_DATABASE_NAME set, that database is created
# before (directly on PostgreSQL: a database with pooled connections open cannot be
# dropped through the pooler) and dropped after, and pytest is to be run with --reuse-db.
set -euo pipefail

if [ $# -eq 0 ]; then
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
PORT="${PGBOUNCER_PORT:-6432}"
UPSTREAM="${PGBOUNCER_UPSTREAM:-127.0.0.1:5432}"
UP_HOST="${UPSTREAM%:*}"
UP_PORT="${UPSTREAM##*:}"
PGBOUNCER="$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"
if [ ! -x "$PGBOUNCER" ]; then
    echo "pgbouncer is not installed: apt-get install -y pgbouncer" >&2
    exit 1
fi

# On PostgreSQL itself, without its notices ("does not exist, skipping").
upstream_psql() {
    PGOPTIONS=--client-min-messages=warning psql -h "$UP_HOST" -p "$UP_PORT" -U postgres -q "$@" >/dev/null
}

DIR="$(mktemp -d -t pgbouncer-XXXXXX)"
chmod 755 "$DIR"
cat >"$DIR/pgbouncer.ini" <<INI
[databases]
* = host=$UP_HOST port=$UP_PORT
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PORT
unix_socket_dir = $DIR
pool_mode = transaction
auth_type = trust
auth_file = $DIR/userlist.txt
admin_users = postgres
max_client_conn = 1000
default_pool_size = 20
ignore_startup_parameters = extra_float_digits
logfile = $DIR/pgbouncer.log
pidfile = $DIR/pgbouncer.pid
INI
echo '"postgres" ""' >"$DIR/userlist.txt"

RUN=()
if [ "$(id -u)" = 0 ]; then
    # PgBouncer refuses to run as root.
    chown -R postgres:postgres "$DIR"
    RUN=(runuser -u postgres --)
fi

cleanup() {
    if [ -f "$DIR/pgbouncer.pid" ]; then
        kill "$(cat "$DIR/pgbouncer.pid")" 2>/dev/null || true
        for _ in $(seq 1 50); do
            [ -f "$DIR/pgbouncer.pid" ] || break
            sleep 0.1
        done
    fi
    if [ -n "${TEST_DATABASE_NAME:-}" ]; then
        upstream_psql -c "DROP DATABASE IF EXISTS \"$TEST_DATABASE_NAME\""
    fi
    rm -rf "$DIR"
}
trap cleanup EXIT

if [ -n "${TEST_DATABASE_NAME:-}" ]; then
    upstream_psql -c "DROP DATABASE IF EXISTS \"$TEST_DATABASE_NAME\"" \
        -c "CREATE DATABASE \"$TEST_DATABASE_NAME\""
fi
"${RUN[@]}" "$PGBOUNCER" -d "$DIR/pgbouncer.ini" >/dev/null
for _ in $(seq 1 50); do
    pg_isready -h 127.0.0.1 -p "$PORT" -q && break
    sleep 0.1
done
if ! pg_isready -h 127.0.0.1 -p "$PORT" -q; then
    echo "pgbouncer did not start:" >&2
    cat "$DIR/pgbouncer.log" >&2 || true
    exit 1
fi

export DATABASE_URL="postgres://postgres@127.0.0.1:$PORT/${PGBOUNCER_DATABASE:-postgres}"
export DATABASE_POOLER=pgbouncer
"$@"
