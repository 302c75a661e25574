#!/usr/bin/env bash
# Makes the Temporal CLI available, installing the pinned version into .tools/bin when missing.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if command -v temporal >/dev/null 2>&1; then
  exit 0
fi
if [ -n "${TEMPORAL_ADDRESS:-}" ]; then
  say "TEMPORAL_ADDRESS is set and no Temporal CLI is installed: using the cluster at $TEMPORAL_ADDRESS"
  exit 0
fi
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null 2>&1 || die "Neither the Temporal CLI nor Go is installed.
  Install one of them: Go (https://go.dev/dl) lets this script build the CLI $TEMPORAL_CLI_VERSION,
  or install the Temporal CLI yourself (https://docs.temporal.io/cli),
  or set TEMPORAL_ADDRESS to an existing Temporal cluster."

say "installing the Temporal CLI $TEMPORAL_CLI_VERSION into .tools/bin (go install, a few minutes the first time)"
mkdir -p "$TOOLS_BIN"
GOBIN="$TOOLS_BIN" go install "github.com/temporalio/cli/cmd/temporal@$TEMPORAL_CLI_VERSION" ||
  die "go install of the Temporal CLI failed (see above)."
