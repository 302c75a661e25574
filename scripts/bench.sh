#!/usr/bin/env bash
# `npm run bench [-- options]`: sets the project up (dependencies, PostgreSQL, Temporal dev server, build),
# then runs the compiled benchmark with the options given. `npm run bench -- --help` lists them, after a
# build, without starting anything.
#
# Unless TEMPORAL_ADDRESS is set, the bench gets a dev server of its own (port BENCH_TEMPORAL_PORT, 7243 by
# default) on a new SQLite file, stopped at the end: a dev server that has run tests or earlier benches for
# hours is slower (its history tables grow), and the figures would depend on what ran before.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PROJECT_ROOT"

for arg in "$@"; do
  case "$arg" in
    -h | --help)
      bash scripts/setup.sh --build-only
      exec node dist/bench/main.js --help
      ;;
  esac
done

# Two runs at once would share the machine's cores (and the bench's own dev server): their figures would
# mean nothing.
mkdir -p "$DATA_DIR/bench"
exec 9>"$DATA_DIR/bench/lock"
flock -n 9 || die "another benchmark is running on this machine (lock: .data/bench/lock)"

if [ -n "${TEMPORAL_ADDRESS:-}" ]; then
  bash scripts/setup.sh
else
  port="${BENCH_TEMPORAL_PORT:-7243}"
  bench_server() { dev_server_on "$port" "$1" 9>&-; }
  trap 'bench_server --stop' EXIT
  # The default dev server is not needed for the bench: it runs on its own.
  bash scripts/setup.sh --no-dev-server
  bench_server --fresh
  export TEMPORAL_ADDRESS="127.0.0.1:$port"
fi
node dist/bench/main.js "$@"
