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
