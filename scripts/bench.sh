#!/usr/bin/env bash
# `npm run bench [-- options]`: sets the project up (dependencies, PostgreSQL, Temporal dev server, build),
# then runs the compiled benchmark with the options given. `npm run bench -- --help` lists them.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PROJECT_ROOT"

bash scripts/setup.sh
exec node dist/bench/main.js "$@"
