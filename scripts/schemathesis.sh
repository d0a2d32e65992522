#!/usr/bin/env bash
# Fuzz the REST API with schemathesis against a live server holding the demo data, as
# a member's signatory (Poland's) and as the secretariat: every operation of
# /api/v1/schema/ through its examples, coverage, fuzzing and stateful phases, every
# check. Fails on any server error (5xx) or any response the schema does not describe.
#
#   scripts/schemathesis.sh                 # uses .venv (make install)
#   VENV=.venv-ci scripts/schemathesis.sh   # another virtual environment
#
# Everything lives in a scratch directory (SQLite database, media, var/), removed at
# the end; nothing is read from or written to the developer's var/. The time budget
# is SCHEMATHESIS_SECONDS per persona (default 80), so the whole run stays under
# about four minutes on two cores. Reports (JUnit, and the failures as a pytest file)
# go to SCHEMATHESIS_REPORTS if set.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PY=${PYTHON:-$VENV/bin/python}
ST=${SCHEMATHESIS:-$VENV/bin/schemathesis}
BUDGET=${SCHEMATHESIS_SECONDS:-80}
[ -x "$ST" ] || { echo "schemathesis not found at $ST: pip install -e '.[dev]'" >&2; exit 2; }
ST=$(realpath "$ST")
REPORTS=${SCHEMATHESIS_REPORTS:+$(realpath -m "$SCHEMATHESIS_REPORTS")}

work=$(mktemp -d -t consortium-schemathesis.XXXXXX)
server=""
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# A production-like configuration: DEBUG off, its own secrets, tasks in-process.
unset CELERY_BROKER_URL CACHE_URL S3_BUCKET DOWNLOADS_ACCEL_REDIRECT DOWNLOAD_ACCEL_REDIRECT DOWNLOAD_PRESIGNED_REDIRECT
# Plain HTTP on 127.0.0.1: no redirect to HTTPS (on by default with DEBUG off); the
# fuzzer's deliberate bad tokens must not throttle its good ones (all from 127.0.0.1); the
# notices the fuzzer's acts cause are written to the server's log (there is no mail server).
export DATABASE_URL="sqlite:///$work/db.sqlite3" DEBUG=0 ALLOWED_HOSTS=127.0.0.1 SECURE_SSL_REDIRECT=0 \
    API_TOKEN_FAILURE_LIMIT=1000000 EMAIL_URL=console:// \
    VAR_DIR="$work/var" MEDIA_ROOT="$work/media" LEDGER_ORIGIN=fuzz.ledger.example \
    LOG_LEVEL=ERROR
SECRET_KEY=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(50))')
LEDGER_KEK=$("$PY" -c 'import secrets; print(secrets.token_hex(32))')
export SECRET_KEY LEDGER_KEK

started=$(date +%s)
echo "== demo data in $work"
"$PY" manage.py migrate --noinput -v0
"$PY" manage.py demo --entries 20 >"$work/demo.out"
admin_token=$("$PY" manage.py apitoken create --user admin --days 1 --name schemathesis 2>/dev/null)
pl_token=$("$PY" manage.py apitoken create --user delegate-pl --days 1 --name schemathesis 2>/dev/null)

port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
echo "== server at $base"
"$PY" -m gunicorn consortium.wsgi --bind "127.0.0.1:$port" --workers 2 --threads 2 \
    --timeout 60 --log-level warning 2>"$work/server.log" &
server=$!
for _ in $(seq 1 60); do
    curl -fsS -o /dev/null "$base/api/v1/schema/" 2>/dev/null && break
    kill -0 "$server" 2>/dev/null || { cat "$work/server.log"; exit 1; }
    sleep 0.5
done

status=0
for persona in "delegate-pl:$pl_token" "secretariat:$admin_token"; do
    name=${persona%%:*}
    token=${persona#*:}
    echo "== schemathesis as $name (${BUDGET}s)"
    reports=()
    if [ -n "$REPORTS" ]; then
        mkdir -p "$REPORTS"
        reports=(--report junit,pytest --report-dir "$REPORTS/$name")
    fi
    # Every check but positive_data_acceptance, which expects any request the schema
    # admits to succeed: the API's rules go beyond what a schema can say (a deadline in
    # the future, a document that was uploaded, an index below the tree size, the
    # caller's seat and member), and a request that breaks them is a 4xx problem naming
    # the rule, which is what a user wants. Its 4xx answers are still checked against
    # the schema (status, content type, body) by the other checks.
    # One worker: with threads, Hypothesis' ast.parse on CPython 3.11 trips over its own
    # recursion counter ("AST constructor recursion depth mismatch"), an error of the tool.
    # From the scratch directory, where schemathesis keeps its cache.
    (cd "$work" && "$ST" run "$base/api/v1/schema/" \
        --header "Authorization: Bearer $token" \
        --checks all --exclude-checks positive_data_acceptance \
        --phases examples,coverage,fuzzing,stateful --max-time "$BUDGET" \
        --workers 1 --request-timeout 30 --seed 20240611 --generation-database none \
        --no-color "${reports[@]}") \
        || status=1
done
if grep -q "Traceback\|Internal Server Error" "$work/server.log"; then
    echo "== the server logged errors:"
    cat "$work/server.log"
    status=1
fi
echo "== done in $(($(date +%s) - started))s"
exit $status
