#!/usr/bin/env bash
# Sets up everything on this machine, then runs the failover worker (the service deployed on the Master).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PROJECT_ROOT"
bash scripts/setup.sh
say "starting the worker (Ctrl-C stops it; Temporal Web UI: http://127.0.0.1:${TEMPORAL_UI_PORT:-8233})"
exec node dist/workers/main.js
