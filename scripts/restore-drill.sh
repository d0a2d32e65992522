#!/usr/bin/env bash
# The restore drill (docs/backups.md): restore a backup into scratch PostgreSQL, then
# check it as the log would before serving from it, timing each phase.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/restore-drill.sh --base-backup DIR [--wal-archive DIR] [--target-time TIME]
                                [--database NAME] [options]
       scripts/restore-drill.sh --dump FILE [options]

Restore a backup into a scratch PostgreSQL, then run, against it:
  manage.py ledger verify --no-progress   every entry, signature, stored hash, checkpoint
  manage.py ledger replay --check         the projections rebuilt from the entries
  manage.py ledger behind                 the comparison with the newest checkpoint ever
                                          published (LEDGER_PUBLISHED_PATH, kept outside
                                          the database) and the sizes witnesses cosigned
print the time of each phase and a verdict, and remove the scratch copy.

Backups:
  --base-backup DIR   a plain-format pg_basebackup directory. It is copied (the backup is
                      never changed) into a scratch cluster started with pg_ctl on a free
                      port of 127.0.0.1, as the postgres user when run as root, with
                      archiving off (the drill never writes to the production archive).
  --wal-archive DIR   the WAL archive (what archive_command copied): recovery replays it
                      with restore_command 'cp DIR/%f %p', then the cluster is promoted.
                      The postgres user must be able to read it.
  --target-time TIME  point-in-time recovery: stop at this time (recovery_target_time,
                      e.g. '2026-12-05 21:30:00+00'); needs --wal-archive.
  --database NAME     the ledger's database inside the base backup (default: the name in
                      DATABASE_URL, else "consortium").
  --dump FILE         a pg_dump custom-format file (pg_dump -Fc): restored with pg_restore
                      into a new database on the server of DATABASE_URL (its host, port
                      and user; the database is named restore_drill_<pid>).

Options:
  --pg-bin DIR        PostgreSQL's programs (default: /usr/lib/postgresql/15/bin)
  --python PATH       the Python that runs manage.py (default: .venv/bin/python, else python3)
  --port PORT         the scratch cluster's port (default: a free one)
  --workers N         processes for `ledger verify` (default: every core)
  --keep              leave the scratch cluster or database in place (its URL is printed)
  -h, --help          this help

The project's other settings come from the environment, as for the server: VAR_DIR or
LEDGER_KEK, LEDGER_ORIGIN, LEDGER_PUBLISHED_PATH. Nothing is published and nothing is
sent to a broker (CELERY_BROKER_URL is unset for the drill).

Exit status: 0 ready (verifies, replays, holds everything published); 3 restored and
consistent but behind what was published (the log would start read-only: the sentence
says which entries to re-ingest with `manage.py ledger ingest`); 1 a check failed;
2 a usage error.
EOF
}

die() { echo "restore-drill: $*" >&2; exit 2; }

BASE="" WAL="" TARGET="" DUMP="" DBNAME="" PORT="" KEEP=0 WORKERS=""
PGBIN=/usr/lib/postgresql/15/bin
HERE="$(cd "$(dirname "$0")/.." && pwd)"
PY="${HERE}/.venv/bin/python"
[ -x "$PY" ] || PY="$(command -v python3)"
while [ $# -gt 0 ]; do
    case "$1" in
        --base-backup) BASE="${2:?}"; shift 2 ;;
        --wal-archive) WAL="${2:?}"; shift 2 ;;
        --target-time) TARGET="${2:?}"; shift 2 ;;
        --database) DBNAME="${2:?}"; shift 2 ;;
        --dump) DUMP="${2:?}"; shift 2 ;;
        --pg-bin) PGBIN="${2:?}"; shift 2 ;;
        --python) PY="${2:?}"; shift 2 ;;
        --port) PORT="${2:?}"; shift 2 ;;
        --workers) WORKERS="${2:?}"; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
if [ -n "$BASE" ] && [ -n "$DUMP" ]; then die "give --base-backup or --dump, not both"; fi
if [ -z "$BASE" ] && [ -z "$DUMP" ]; then usage >&2; die "give --base-backup DIR or --dump FILE"; fi
if [ -n "$TARGET" ] && [ -z "$WAL" ]; then die "--target-time needs --wal-archive"; fi
if [ -n "$BASE" ] && [ ! -f "$BASE/PG_VERSION" ]; then die "$BASE: not a plain-format base backup (no PG_VERSION)"; fi
if [ -n "$DUMP" ] && [ ! -f "$DUMP" ]; then die "$DUMP: no such file"; fi
if [ -n "$WAL" ] && [ ! -d "$WAL" ]; then die "$WAL: no such directory"; fi

now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
PHASES=()
phase() { PHASES+=("$(printf '%-10s %8s s' "$1" "$2")"); printf '%-10s %8s s\n' "$1" "$2"; }

as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

SCRATCH="" URL="" DROP_URL="" DROP_DB=""
cleanup() {
    if [ "$KEEP" = 1 ]; then
        [ -n "$URL" ] && echo "kept: DATABASE_URL=$URL${SCRATCH:+ (cluster in $SCRATCH)}"
        return
    fi
    if [ -n "$SCRATCH" ]; then
        as_postgres "$PGBIN/pg_ctl" -D "$SCRATCH/data" -m immediate -w stop >/dev/null 2>&1 || true
        rm -rf "$SCRATCH"
    fi
    if [ -n "$DROP_DB" ]; then
        "$PGBIN/psql" -q "$DROP_URL" -c "DROP DATABASE IF EXISTS \"$DROP_DB\" WITH (FORCE)" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start=$(now)
if [ -n "$BASE" ]; then
    PORT="${PORT:-$(free_port)}"
    if [ -z "$DBNAME" ]; then
        DBNAME="$("$PY" -c 'import os, urllib.parse as u; print(u.urlsplit(os.environ.get("DATABASE_URL", "")).path.lstrip("/") or "consortium")')"
    fi
    SCRATCH="$(mktemp -d /tmp/restore-drill.XXXXXX)"
    cp -a "$BASE" "$SCRATCH/data"
    rm -f "$SCRATCH/data/postmaster.pid" "$SCRATCH/data/standby.signal"
    [ -f "$SCRATCH/data/postgresql.conf" ] || : >"$SCRATCH/data/postgresql.conf"
    # The scratch cluster answers on 127.0.0.1 and its own socket only, and archives nothing.
    printf '%s\n' "local all all trust" "host all all 127.0.0.1/32 trust" >"$SCRATCH/data/pg_hba.conf"
    {
        echo "port = $PORT"
        echo "listen_addresses = '127.0.0.1'"
        echo "unix_socket_directories = '$SCRATCH'"
        echo "archive_mode = off"
        echo "hba_file = '$SCRATCH/data/pg_hba.conf'"
        echo "ssl = off"
        if [ -n "$WAL" ]; then
            echo "restore_command = 'cp \"$(cd "$WAL" && pwd)/%f\" \"%p\"'"
            echo "recovery_target_action = 'promote'"
            [ -n "$TARGET" ] && echo "recovery_target_time = '$TARGET'"
        fi
    } >>"$SCRATCH/data/postgresql.auto.conf"
    [ -n "$WAL" ] && : >"$SCRATCH/data/recovery.signal"
    chmod 700 "$SCRATCH" "$SCRATCH/data"
    [ "$(id -u)" = 0 ] && chown -R postgres: "$SCRATCH"
    if ! as_postgres "$PGBIN/pg_ctl" -D "$SCRATCH/data" -l "$SCRATCH/server.log" -w -t 3600 start >/dev/null; then
        tail -20 "$SCRATCH/server.log" >&2
        echo "VERDICT: FAILED: the scratch cluster did not start" >&2
        exit 1
    fi
    URL="postgres://postgres@127.0.0.1:$PORT/$DBNAME"
    # Recovery ends with the promotion; until then the database is read-only.
    until [ "$("$PGBIN/psql" -qAt "$URL" -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]; do
        if ! as_postgres "$PGBIN/pg_ctl" -D "$SCRATCH/data" status >/dev/null 2>&1; then
            tail -20 "$SCRATCH/server.log" >&2
            echo "VERDICT: FAILED: recovery stopped the scratch cluster" >&2
            exit 1
        fi
        sleep 0.2
    done
else
    : "${DATABASE_URL:?--dump restores into a new database on the server of DATABASE_URL}"
    DROP_URL="$DATABASE_URL"
    DROP_DB="restore_drill_$$"
    URL="${DATABASE_URL%/*}/$DROP_DB"
    "$PGBIN/psql" -q "$DROP_URL" -c "CREATE DATABASE \"$DROP_DB\"" >/dev/null
    "$PGBIN/pg_restore" --no-owner --exit-on-error -d "$URL" "$DUMP"
fi
restored=$(now)
phase restore "$(took "$start" "$restored")"

export DATABASE_URL="$URL" LEDGER_PUBLISH_ON_APPEND=0 LEDGER_TILES_WRITE=0
unset CELERY_BROKER_URL
manage() { "$PY" "$HERE/manage.py" "$@"; }
size=$("$PGBIN/psql" -qAt "$URL" -c 'SELECT COUNT(*) FROM ledger_entry')
echo "restored: $size entries"

failed=""
t=$(now)
if ! manage ledger verify --no-progress ${WORKERS:+--workers "$WORKERS"}; then failed="${failed} verify"; fi
phase verify "$(took "$t" "$(now)")"
t=$(now)
if ! manage ledger replay --check; then failed="${failed} replay"; fi
phase replay "$(took "$t" "$(now)")"
t=$(now)
behind=0
manage ledger behind || behind=$?
phase compare "$(took "$t" "$(now)")"
phase total "$(took "$start" "$(now)")"

[ "$behind" = 0 ] || [ "$behind" = 3 ] || failed="${failed} compare"
if [ -n "$failed" ]; then
    echo "VERDICT: FAILED:${failed} (see above); do not serve from this backup"
    exit 1
fi
if [ "$behind" = 3 ]; then
    echo "VERDICT: RESTORED BUT BEHIND: the log would start read-only until the missing entries are re-ingested (manage.py ledger ingest)"
    exit 3
fi
echo "VERDICT: READY: $size entries verify, replay, and hold every checkpoint published"
