#!/usr/bin/env bash
# Starts the Temporal dev server (persistent SQLite file in WAL mode, Web UI) unless one already answers,
# or does nothing when TEMPORAL_ADDRESS points at another cluster.
#   --fresh  stops the server this script started on TEMPORAL_DEV_PORT, then starts it on a new SQLite file
#   --stop   stops the server this script started on TEMPORAL_DEV_PORT
#   --discard  stops it and removes its SQLite file (a test run's server of its own; its log stays)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PROJECT_ROOT"

mode="${1:-start}"
case "$mode" in
  start | --fresh | --stop | --discard) ;;
  *) die "unknown option $mode (expected --fresh, --stop or --discard)" ;;
esac

DEV_PORT="${TEMPORAL_DEV_PORT:-7233}"
UI_PORT="${TEMPORAL_UI_PORT:-8233}"
METRICS_PORT="${TEMPORAL_DEV_METRICS_PORT:-7235}"
address="${TEMPORAL_ADDRESS:-127.0.0.1:$DEV_PORT}"

# One SQLite file and log per port: a second dev server (another port) never shares the default one's.
instance="dev-server"
if [ "$DEV_PORT" != 7233 ]; then instance="dev-server-$DEV_PORT"; fi
db_file="$DATA_DIR/temporal/$instance.sqlite"
log_file="$DATA_DIR/temporal/$instance.log"
pid_file="$DATA_DIR/temporal/$instance.pid"

stop_server() {
  [ -f "$pid_file" ] || return 0
  local pid
  pid="$(cat "$pid_file")"
  # The pid may have been reused by another process since: only a dev server is stopped.
  if grep -q start-dev "/proc/$pid/cmdline" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 50); do
      [ -d "/proc/$pid" ] || break
      sleep 0.2
    done
  fi
  rm -f "$pid_file"
}

if [ "$mode" = --stop ]; then
  stop_server
  exit 0
fi
if [ "$mode" = --fresh ] || [ "$mode" = --discard ]; then
  stop_server
  rm -f "$db_file" "$db_file-wal" "$db_file-shm"
  if [ "$mode" = --discard ]; then exit 0; fi
fi

if [ -n "${TEMPORAL_ADDRESS:-}" ] && [ "$TEMPORAL_ADDRESS" != "127.0.0.1:$DEV_PORT" ] && [ "$TEMPORAL_ADDRESS" != "localhost:$DEV_PORT" ]; then
  say "TEMPORAL_ADDRESS=$TEMPORAL_ADDRESS: not starting a local dev server"
  exit 0
fi

answers() { temporal operator cluster health --address "$address" --command-timeout 3s >/dev/null 2>&1; }
# The cluster health call touches no persistence: a server whose SQLite fails ("interrupted (9)", then
# "Namespace default is not found", seen after hours of tests and benches) still says SERVING. Reading the
# namespace reads the data.
reads_its_data() {
  temporal operator namespace describe --namespace default --address "$address" --command-timeout 3s \
    >/dev/null 2>&1
}
healthy() { answers && reads_its_data; }
our_server_runs() { [ -f "$pid_file" ] && grep -q start-dev "/proc/$(cat "$pid_file")/cmdline" 2>/dev/null; }

if answers; then
  for _ in 1 2 3; do
    if reads_its_data; then
      say "Temporal dev server already running at $address (Web UI http://127.0.0.1:$UI_PORT)"
      exit 0
    fi
    sleep 1
  done
  our_server_runs || die "a Temporal server answers at $address but cannot read its default namespace: restart it, or set TEMPORAL_DEV_PORT to use another port."
  say "the Temporal dev server at $address answers but cannot read its data: restarting it on the same file"
  stop_server
fi

mkdir -p "$DATA_DIR/temporal"
say "starting the Temporal dev server at $address, Web UI http://127.0.0.1:$UI_PORT (log: ${log_file#"$PROJECT_ROOT"/})"
search_attributes=()
for name in VmsServerId VmsFolder VmsRole VmsFailoverTarget; do
  search_attributes+=(--search-attribute "$name=Keyword")
done
# The history service reads new transfer and timer tasks at most 20 times a second by default: every hop of a
# failover (timer fired, child started, workflow task dispatched) then waits up to 50 ms for the next read.
# Reads are triggered by new tasks, so a higher ceiling costs nothing when idle (docs/benchmark.md).
dynamic_config=()
for key in history.transferProcessorMaxPollRPS history.timerProcessorMaxPollRPS; do
  dynamic_config+=(--dynamic-config-value "$key=1000")
done
# The monitor's take-over activity is handed to the worker in the answer to the workflow task that schedules
# it, instead of waiting in the task queue for the next poll (docs/benchmark.md).
dynamic_config+=(--dynamic-config-value system.enableActivityEagerExecution=true)
nohup temporal server start-dev \
  --ip 127.0.0.1 --port "$DEV_PORT" --ui-port "$UI_PORT" --metrics-port "$METRICS_PORT" \
  --db-filename "$db_file" \
  --sqlite-pragma journal_mode=wal --sqlite-pragma synchronous=normal \
  "${search_attributes[@]}" "${dynamic_config[@]}" \
  --log-level warn \
  >"$log_file" 2>&1 &
echo $! >"$pid_file"

for _ in $(seq 1 90); do
  if healthy; then exit 0; fi
  sleep 1
done
die "the Temporal dev server did not become healthy in 90s (see ${log_file#"$PROJECT_ROOT"/})."
