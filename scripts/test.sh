#!/usr/bin/env bash
# Sets up everything on this machine, then runs lint, type checks and the whole test suite against the
# real Temporal dev server and real PostgreSQL. Extra arguments go to jest (e.g. a test file).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PROJECT_ROOT"
started_at=$(now)

# Unless TEMPORAL_ADDRESS names a cluster, the run gets a Temporal dev server of its own, on free ports and a
# new SQLite file, removed at the end: the tests never share a server with `npm start`, a bench or another
# test run (one that stops its server would fail every spec of this one), and never read a server slowed by
# hours of earlier histories.
if [ -n "${TEMPORAL_ADDRESS:-}" ]; then
  bash scripts/setup.sh
else
  # A gRPC port whose Web UI (+1000) and metrics (+2) ports are free too.
  port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
  port=""
  for _ in $(seq 1 50); do
    candidate=$((17000 + RANDOM % 1000))
    if port_free "$candidate" && port_free "$((candidate + 1000))" && port_free "$((candidate + 2))"; then
      port="$candidate"
      break
    fi
  done
  [ -n "$port" ] || die "no free ports for the test run's Temporal dev server between 17000 and 18999"
  trap 'dev_server_on "$port" --discard' EXIT
  bash scripts/setup.sh --no-dev-server
  dev_server_on "$port" --fresh
  export TEMPORAL_ADDRESS="127.0.0.1:$port" TEMPORAL_UI_URL="http://127.0.0.1:$((port + 1000))"
fi
bash scripts/install-chromium.sh
setup_done=$(now)

say "lint (eslint, prettier)"
npx eslint --max-warnings 0 .
npx prettier --check . >/dev/null || { npx prettier --check .; die "formatting: run npm run format"; }
say "type check"
npx tsc -p tsconfig.json --noEmit

say "tests"
mkdir -p "$DATA_DIR/test"
results="$DATA_DIR/test/jest-results.json"
rm -f "$results"
status=0
npx jest --ci --json --outputFile="$results" "$@" || status=$?
if [ "$status" -eq 0 ] && [ "$#" -eq 0 ]; then
  say "benchmark smoke run (correctness counters must be 0)"
  node dist/bench/main.js --smoke || status=$?
fi
say "setup took $((setup_done - started_at))s, lint and tests $(($(now) - setup_done))s"
if [ -f "$results" ]; then
  node -e '
    const r = require(process.argv[1]);
    console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`);
  ' "$results"
fi
exit "$status"
