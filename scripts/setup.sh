#!/usr/bin/env bash
# Installs and starts everything the project needs on this machine; safe to run again.
#   --build-only     the npm dependencies and the build, nothing started (`npm run bench -- --help`)
#   --no-dev-server  everything but the Temporal dev server (the benchmark starts one of its own)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PROJECT_ROOT"
started_at=$(now)

mode="${1:-all}"
case "$mode" in
  all | --build-only | --no-dev-server) ;;
  *) die "unknown option $mode (expected --build-only or --no-dev-server)" ;;
esac

command -v node >/dev/null || die "Node.js >= 20 is required (https://nodejs.org)."
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
  die "Node.js >= 20 is required, found $(node --version)."

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

# Built before anything starts: the embedded PostgreSQL runs from dist/.
say "building TypeScript"
npx tsc -p tsconfig.build.json

if [ "$mode" != --build-only ]; then
  bash scripts/install-temporal-cli.sh
  bash scripts/postgres.sh
  if [ "$mode" != --no-dev-server ]; then bash scripts/temporal-dev-server.sh; fi
fi

say "setup done in $(($(now) - started_at))s"
