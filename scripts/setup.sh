#!/usr/bin/env bash
# Installs and starts everything the project needs on this machine; safe to run again.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PROJECT_ROOT"
started_at=$(now)

command -v node >/dev/null || die "Node.js >= 20 is required (https://nodejs.org)."
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
  die "Node.js >= 20 is required, found $(node --version)."

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

bash scripts/install-temporal-cli.sh
bash scripts/postgres.sh
bash scripts/temporal-dev-server.sh

say "building TypeScript"
npx tsc -p tsconfig.build.json
say "setup done in $(($(now) - started_at))s"
