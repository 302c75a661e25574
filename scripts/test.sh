#!/usr/bin/env bash
# Sets up everything on this machine, then runs lint, type checks and the whole test suite against the
# real Temporal dev server and real PostgreSQL. Extra arguments go to jest (e.g. a test file).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PROJECT_ROOT"
started_at=$(now)
bash scripts/setup.sh
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
