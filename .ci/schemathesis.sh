#!/usr/bin/env bash
# Fuzzes the HR API of a running daemon with schemathesis: the real
# binary, a temporary store and an HR token, requests generated from
# /api/v1/openapi.json. Fails when any response is a 5xx, when the
# daemon dies, or when a response contradicts the OpenAPI description.
#
# Usage: .ci/schemathesis.sh [extra schemathesis options]
# The run is reproducible: the seed is SCHEMATHESIS_SEED (default fixed);
# SCHEMATHESIS_SEED=random draws a new one, printed in the report, for
# exploring locally (then fix what it finds and keep the fixed seed).
# Needs `schemathesis` on PATH (pip install schemathesis).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v schemathesis >/dev/null; then
  echo "error: schemathesis is not installed (pip install schemathesis)" >&2
  exit 1
fi

cargo build --locked --quiet --bin attendd
bin="$PWD/target/debug/attendd"
work="$(mktemp -d)"
daemon=""
cleanup() {
  if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
token="schemathesis-hr-$(date +%s%N)"
cat >"$work/attendd.toml" <<TOML
[policy]
file = "$PWD/config/policies/seed-default.toml"

[store]
url = "sqlite://$work/attendd.db"

[http]
listen = "127.0.0.1:$port"
[[http.tokens]]
name = "schemathesis"
token_env = "ATTENDD_SCHEMATHESIS_TOKEN"
role = "hr"
TOML
export ATTENDD_SCHEMATHESIS_TOKEN="$token"
export ATTENDD_CONFIG="$work/attendd.toml"

# Some data, so that reads find employees, days and ledger entries.
"$bin" import employees config/examples/employees.csv >/dev/null
"$bin" import punches config/examples/punches.csv >/dev/null || true

"$bin" run >"$work/daemon.log" 2>&1 &
daemon=$!
for _ in $(seq 1 100); do
  if python3 - "$port" <<'PY' 2>/dev/null; then break; fi
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=1)
PY
  kill -0 "$daemon" 2>/dev/null || { cat "$work/daemon.log" >&2; echo "error: the daemon did not start" >&2; exit 1; }
  sleep 0.2
done

seed="${SCHEMATHESIS_SEED:-20261130}"
seed_args=()
if [ "$seed" != "random" ]; then seed_args=(--seed "$seed"); fi

status=0
# Run from the temporary folder: schemathesis keeps a cache where it runs.
(cd "$work" && schemathesis run "http://127.0.0.1:$port/api/v1/openapi.json" \
  --url "http://127.0.0.1:$port" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-40}" \
  --phases examples,coverage,fuzzing \
  --workers 1 \
  "${seed_args[@]}" \
  --no-color \
  "$@") || status=$?

if ! kill -0 "$daemon" 2>/dev/null; then
  echo "error: the daemon died during the run; its log:" >&2
  tail -n 50 "$work/daemon.log" >&2
  exit 1
fi
if grep -q "panicked" "$work/daemon.log"; then
  echo "error: the daemon panicked during the run:" >&2
  grep -A5 "panicked" "$work/daemon.log" >&2
  exit 1
fi
if [ "$status" -ne 0 ]; then
  echo "error: schemathesis found failures (exit $status)" >&2
  exit "$status"
fi
echo "schemathesis: no server error, no crash"
