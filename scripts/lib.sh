# Shared helpers for the project's shell scripts. Sourced, not run.
set -euo pipefail

PROJECT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_BIN="$PROJECT_ROOT/.tools/bin"
DATA_DIR="$PROJECT_ROOT/.data"
TEMPORAL_CLI_VERSION="v1.5.1"
export PATH="$TOOLS_BIN:$PATH"

say() { printf '\033[1m[vms-failover]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[vms-failover] error:\033[0m %s\n' "$*" >&2; exit 1; }

# Seconds since the epoch, for the timings the scripts print.
now() { date +%s; }

# Runs scripts/temporal-dev-server.sh for a dev server on gRPC port $1 (Web UI on $1 + 1000, metrics on $1 + 2)
# with the mode $2 (start, --fresh, --stop, --discard): the bench's and the test run's servers of their own.
dev_server_on() {
  TEMPORAL_DEV_PORT="$1" TEMPORAL_UI_PORT="$(($1 + 1000))" TEMPORAL_DEV_METRICS_PORT="$(($1 + 2))" \
    bash "$PROJECT_ROOT/scripts/temporal-dev-server.sh" "$2"
}
