#!/usr/bin/env bash
# `npm run test:production-stack`: starts a production stack of its own (scripts/production-stack.sh on
# port 7733, Web UI 8733, its own databases and roles, made anew), then runs against it over mTLS:
#   1. the stack's own specs (test/production-stack/), the acceptance specs (a failover end to end, restore,
#      waiting for a standby, contention, the CLI and the heartbeat agent), the worker-kill specs and the
#      least-privilege specs, picked by name from the usual test files;
#   2. the Temporal-restart spec, which stops and starts the production server itself: alone;
#   3. the benchmark smoke run.
# The stack is stopped at the end (its data stays in .data/production-stack-7733 for a look).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PROJECT_ROOT"
started_at=$(now)

export PRODUCTION_STACK_PORT="${PRODUCTION_STACK_TEST_PORT:-7733}"
# The shared dev server is not needed: setup leaves it alone when TEMPORAL_ADDRESS points elsewhere.
TEMPORAL_ADDRESS="127.0.0.1:$PRODUCTION_STACK_PORT" bash scripts/setup.sh
bash scripts/production-stack.sh reset
trap 'bash scripts/production-stack.sh stop' EXIT
bash scripts/production-stack.sh start
eval "$(bash scripts/production-stack.sh env temporal)"
export TEMPORAL_SERVER_UNDER_TEST=production-stack
stack_ready=$(now)

# Each entry is a fragment of the full names (describe and test) of the specs to run; each must match at least
# one passing test, so that a renamed spec is noticed instead of silently left out.
SELECTED=(
  'the production stack'
  # A failover end to end. Not the 1 s timeout spec of the same file: there the promoted server inherits that
  # timeout and, on a slower server, can fail over in turn before the spec stops its monitor. The timer path
  # is covered by the Temporal-restart spec (a deadline passing while the server is down).
  'a heartbeat reporting all material disks broken fails the Slave over at once'
  'a repaired server is restored as a new standby and does not take its cameras back'
  'two Slaves failing at once with one standby: one takes it, the other waits and goes on when a standby appears'
  'five Slaves failing at once with two standbys'
  'a failed-over Slave is restored as a standby, and the history shows the failover with its timings'
  'heartbeats keep a Slave monitoring past its timeout'
  'all material disks broken fail the Slave over'
  'worker killed during'
  'the least-privilege role of the worker'
)
FILES=(
  test/production-stack
  test/failover.test.ts
  test/reliability/contention.test.ts
  test/cli.test.ts
  test/cli-agent.test.ts
  test/reliability/worker-crash.test.ts
  test/reliability/security.test.ts
)
pattern="$(printf '%s\n' "${SELECTED[@]}" | sed 's/[][\.*^$()+?{}|]/\\&/g' | paste -sd'|')"

mkdir -p "$DATA_DIR/test"
selected_results="$DATA_DIR/test/production-stack-results.json"
restart_results="$DATA_DIR/test/production-stack-restart-results.json"
rm -f "$selected_results" "$restart_results"
status=0

say "specs against the production stack at $TEMPORAL_ADDRESS (TLS, mTLS)"
npx jest --ci --json --outputFile="$selected_results" --testPathIgnorePatterns=/node_modules/ \
  --testNamePattern="$pattern" "${FILES[@]}" || status=$?
if [ -f "$selected_results" ]; then
  node -e '
    const results = require(process.argv[1]);
    const passed = results.testResults.flatMap((file) => file.assertionResults)
      .filter((test) => test.status === "passed").map((test) => test.fullName);
    const missing = process.argv.slice(2).filter((fragment) => !passed.some((name) => name.includes(fragment)));
    if (missing.length > 0) {
      console.error(`no passing spec matches: ${missing.join("; ")}`);
      process.exit(1);
    }
  ' "$selected_results" "${SELECTED[@]}" || status=1
fi

say "the Temporal-restart spec (stops and starts the production server: runs alone)"
npx jest --ci --json --outputFile="$restart_results" --runInBand test/reliability/temporal-restart.test.ts ||
  status=$?

say "benchmark smoke run against the production stack (correctness counters must be 0)"
node dist/bench/main.js --smoke || status=$?

say "stack started in $((stack_ready - started_at))s, tests $(($(now) - stack_ready))s, in all $(($(now) - started_at))s"
node -e '
  let passed = 0, failed = 0;
  for (const file of process.argv.slice(1)) {
    try {
      const r = require(file);
      passed += r.numPassedTests; failed += r.numFailedTests;
    } catch { failed += 1; }
  }
  console.log(`tests: ${passed} passed, ${failed} failed`);
' "$selected_results" "$restart_results"
exit "$status"
