#!/usr/bin/env bash
# The production shape on this one machine, without Docker: the Temporal server (4 history shards) on the
# local PostgreSQL with TLS on its frontend (mTLS unless PRODUCTION_STACK_MTLS=false), the Temporal Web UI,
# and the failover service's database with its owner role and the worker's least-privilege role. The same
# config files as docker-compose.yml (deploy/temporal/). Ports, TLS and roles: docs/production-stack.md.
#
#   start          builds what is missing (Go), sets up PostgreSQL and certificates, starts the server and
#                  the Web UI, waits until they answer, registers the namespace and search attributes,
#                  migrates the service's database as its owner and grants the worker role. Idempotent.
#   stop           stops the server and the Web UI
#   status         what runs, and where
#   pid            the server's process id (exit 1 when it does not run): tests stop it with a signal
#   env [worker|owner|temporal]  export lines for the worker (least-privilege role), for the operator's
#                  `vms` commands that write the site (the owner), or the Temporal settings alone:
#                  eval "$(bash scripts/production-stack.sh env)"
#   reset          stops it, then drops its databases and roles and removes its data (certificates too)
#
# Settings: PRODUCTION_STACK_PORT (frontend gRPC port, default 7633: the stack takes it and the nine ports
# after it, and the Web UI PORT+1000), PRODUCTION_STACK_MTLS (true), PRODUCTION_STACK_PG_HOST (127.0.0.1),
# PRODUCTION_STACK_PG_PORT (5432), PRODUCTION_STACK_PG_SUPERUSER (postgres; its password, if any, from
# PGPASSWORD or ~/.pgpass). Another port is another stack: its own databases, roles and data directory.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PROJECT_ROOT"

TEMPORAL_SERVER_VERSION=v1.29.1
TEMPORAL_UI_SERVER_VERSION=v2.42.1
NAMESPACE=default

PORT="${PRODUCTION_STACK_PORT:-7633}"
[[ "$PORT" =~ ^[0-9]+$ ]] && [ "$PORT" -ge 1024 ] && [ "$PORT" -le 64000 ] ||
  die "PRODUCTION_STACK_PORT=$PORT must be a port from 1024 to 64000"
UI_PORT=$((PORT + 1000))
METRICS_PORT=$((PORT + 9))
MTLS="${PRODUCTION_STACK_MTLS:-true}"
[ "$MTLS" = true ] || [ "$MTLS" = false ] || die "PRODUCTION_STACK_MTLS=$MTLS must be true or false"
PG_HOST="${PRODUCTION_STACK_PG_HOST:-127.0.0.1}"
PG_PORT="${PRODUCTION_STACK_PG_PORT:-5432}"
PG_SUPERUSER="${PRODUCTION_STACK_PG_SUPERUSER:-postgres}"

# The default stack has the plain names; a stack on another port suffixes every name with its port.
suffix=""
if [ "$PORT" != 7633 ]; then suffix="_$PORT"; fi
TEMPORAL_ROLE="temporal$suffix"
TEMPORAL_DB="temporal$suffix"
VISIBILITY_DB="temporal_visibility$suffix"
VMS_OWNER="vms_failover$suffix"
VMS_WORKER="vms_worker$suffix"
VMS_DB="vms_production$suffix"

STACK_DIR="$DATA_DIR/production-stack${suffix/_/-}"
TLS_DIR="$STACK_DIR/tls"
SECRETS_DIR="$STACK_DIR/secrets"
SCHEMA_DIR="$PROJECT_ROOT/.tools/temporal-schema/$TEMPORAL_SERVER_VERSION/postgresql/v12"
SERVER_PID="$STACK_DIR/temporal-server.pid"
SERVER_LOG="$STACK_DIR/temporal-server.log"
UI_PID="$STACK_DIR/temporal-ui.pid"
UI_LOG="$STACK_DIR/temporal-ui.log"
SETUP_LOG="$STACK_DIR/setup.log"

relative() { printf '%s' "${1#"$PROJECT_ROOT"/}"; }
superuser_url() { printf 'postgres://%s@%s:%s/%s' "$PG_SUPERUSER" "$PG_HOST" "$PG_PORT" "$1"; }
role_url() {
  printf 'postgres://%s:%s@%s:%s/%s' "$1" "$(password_of "$1")" "$PG_HOST" "$PG_PORT" "$VMS_DB"
}

# The frontend's client settings, in the variables infra/config.ts and deploy/temporal/setup-namespace.sh read.
client_tls_env() {
  echo "TEMPORAL_ADDRESS=127.0.0.1:$PORT"
  echo "TEMPORAL_NAMESPACE=$NAMESPACE"
  echo "TEMPORAL_TLS_CA_PATH=$TLS_DIR/ca.pem"
  echo "TEMPORAL_TLS_CERT_PATH=$TLS_DIR/vms.pem"
  echo "TEMPORAL_TLS_KEY_PATH=$TLS_DIR/vms-key.pem"
  echo "TEMPORAL_TLS_SERVER_NAME=localhost"
}

# --- processes ---------------------------------------------------------------------------------------------

# The pid in $1 if that process still runs the program $2 (a pid may have been reused since).
running_pid() {
  local pid
  [ -f "$1" ] || return 1
  pid="$(cat "$1")"
  grep -q "$2" "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
}

stop_process() {
  local pid_file="$1" program="$2" pid
  if pid="$(running_pid "$pid_file" "$program")"; then
    kill "$pid"
    for _ in $(seq 1 100); do
      [ -d "/proc/$pid" ] || break
      sleep 0.2
    done
    if [ -d "/proc/$pid" ]; then kill -9 "$pid"; fi
  fi
  rm -f "$pid_file"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- building --------------------------------------------------------------------------------------------

find_go() {
  if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
    export PATH="/usr/local/go/bin:$PATH"
  fi
  command -v go >/dev/null 2>&1 || die "Go is needed to build the Temporal server $TEMPORAL_SERVER_VERSION (https://go.dev/dl)."
}

version_of() { "$TOOLS_BIN/$1" --version 2>/dev/null | grep -o '[0-9][0-9.]*$' || true; }

# go install names a binary after its package (server, sql): each is installed alone and renamed.
go_install() {
  local package="$1" name="$2" gobin
  gobin="$(mktemp -d)"
  GOBIN="$gobin" go install "$package" || die "go install $package failed (see above)."
  mkdir -p "$TOOLS_BIN"
  mv "$gobin"/* "$TOOLS_BIN/$name"
  rmdir "$gobin"
}

build() {
  local server_version="${TEMPORAL_SERVER_VERSION#v}" started_at
  if [ "$(version_of temporal-server)" = "$server_version" ] &&
    [ "$(version_of temporal-sql-tool)" = "$server_version" ] &&
    [ "$(version_of temporal-ui-server)" = "${TEMPORAL_UI_SERVER_VERSION#v}" ] && [ -d "$SCHEMA_DIR" ]; then
    return 0
  fi
  find_go
  started_at=$(now)
  say "building the Temporal server $TEMPORAL_SERVER_VERSION, its SQL tool and the Web UI server $TEMPORAL_UI_SERVER_VERSION into .tools/bin (go install: 5 to 30 minutes the first time)"
  go_install "go.temporal.io/server/cmd/server@$TEMPORAL_SERVER_VERSION" temporal-server
  go_install "go.temporal.io/server/cmd/tools/sql@$TEMPORAL_SERVER_VERSION" temporal-sql-tool
  go_install "github.com/temporalio/ui-server/v2/cmd/server@$TEMPORAL_UI_SERVER_VERSION" temporal-ui-server
  # The versioned PostgreSQL schema ships in the server module's source, not in the SQL tool.
  local module_dir
  module_dir="$(go mod download -json "go.temporal.io/server@$TEMPORAL_SERVER_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  [ -d "$module_dir/schema/postgresql/v12" ] || die "the schema of go.temporal.io/server@$TEMPORAL_SERVER_VERSION was not found"
  mkdir -p "$(dirname "$SCHEMA_DIR")"
  rm -rf "$SCHEMA_DIR"
  cp -R "$module_dir/schema/postgresql/v12" "$SCHEMA_DIR"
  chmod -R u+w "$SCHEMA_DIR"
  say "built in $(($(now) - started_at))s"
}

# --- PostgreSQL ------------------------------------------------------------------------------------------

new_password() {
  local file="$SECRETS_DIR/$1.password"
  [ -s "$file" ] || (umask 077 && openssl rand -hex 24 >"$file")
}

password_of() { cat "$SECRETS_DIR/$1.password"; }

setup_databases() {
  mkdir -p "$SECRETS_DIR"
  chmod 0700 "$SECRETS_DIR"
  for role in "$TEMPORAL_ROLE" "$VMS_OWNER" "$VMS_WORKER"; do new_password "$role"; done
  psql "$(superuser_url postgres)" -c 'SELECT 1' >/dev/null 2>&1 ||
    die "PostgreSQL at $PG_HOST:$PG_PORT does not accept $PG_SUPERUSER (bash scripts/postgres.sh starts the local one)."
  (
    temporal_server_db_env
    export SUPERUSER_URL="$(superuser_url postgres)" TEMPORAL_SCHEMA_DIR="$SCHEMA_DIR" \
      TEMPORAL_SERVER_DB_PASSWORD="$(password_of "$TEMPORAL_ROLE")" \
      VMS_DB_OWNER="$VMS_OWNER" VMS_DB_OWNER_PASSWORD="$(password_of "$VMS_OWNER")" VMS_DB_NAME="$VMS_DB"
    sh deploy/postgres/setup-databases.sh && sh deploy/temporal/setup-schema.sh
  ) >>"$SETUP_LOG" 2>&1 || die "setting up the databases failed (see $(relative "$SETUP_LOG"))."
}

# The database settings of deploy/temporal/config/production.yaml, exported.
temporal_server_db_env() {
  export TEMPORAL_SERVER_DB_HOST="$PG_HOST" TEMPORAL_SERVER_DB_PORT="$PG_PORT" \
    TEMPORAL_SERVER_DB_USER="$TEMPORAL_ROLE" TEMPORAL_SERVER_DB_NAME="$TEMPORAL_DB" \
    TEMPORAL_SERVER_VISIBILITY_DB_NAME="$VISIBILITY_DB"
}

# The owner migrates (the worker's role may create nothing), then the worker's role gets its grants.
setup_service_database() {
  DATABASE_URL="$(role_url "$VMS_OWNER")" LOG_FORMAT=json node dist/workers/migrate.js >>"$SETUP_LOG" 2>&1 ||
    die "migrating $VMS_DB as $VMS_OWNER failed (see $(relative "$SETUP_LOG"))."
  SUPERUSER_URL="$(superuser_url "$VMS_DB")" WORKER_ROLE="$VMS_WORKER" ROLE_PASSWORD="$(password_of "$VMS_WORKER")" \
    sh deploy/postgres/worker-role.sh >>"$SETUP_LOG" 2>&1 || die "granting $VMS_WORKER failed (see $(relative "$SETUP_LOG"))."
  # The URLs hold passwords: the worker and the CLI read them through DATABASE_URL_FILE.
  (umask 077 && role_url "$VMS_WORKER" >"$SECRETS_DIR/worker-database-url" &&
    role_url "$VMS_OWNER" >"$SECRETS_DIR/owner-database-url")
}

# --- the server and the Web UI -----------------------------------------------------------------------------

temporal_cli() {
  temporal "$@" --address "127.0.0.1:$PORT" --tls-ca-path "$TLS_DIR/ca.pem" \
    --tls-cert-path "$TLS_DIR/vms.pem" --tls-key-path "$TLS_DIR/vms-key.pem" --tls-server-name localhost
}

healthy() { temporal_cli operator cluster health --command-timeout 3s >/dev/null 2>&1; }

start_server() {
  if running_pid "$SERVER_PID" temporal-server >/dev/null; then return 0; fi
  for port in $(seq "$PORT" "$METRICS_PORT"); do
    if port_open "$port"; then die "port $port is in use: choose another PRODUCTION_STACK_PORT."; fi
  done
  say "starting the Temporal server $TEMPORAL_SERVER_VERSION at 127.0.0.1:$PORT (TLS, mTLS $MTLS; log: $(relative "$SERVER_LOG"))"
  (
    temporal_server_db_env
    export TEMPORAL_SERVER_PORT="$PORT" TEMPORAL_SERVER_TLS_DIR="$TLS_DIR" \
      TEMPORAL_SERVER_REQUIRE_CLIENT_AUTH="$MTLS" TEMPORAL_SERVER_DB_PASSWORD="$(password_of "$TEMPORAL_ROLE")" \
      TEMPORAL_SERVER_DYNAMIC_CONFIG="$PROJECT_ROOT/deploy/temporal/dynamicconfig/production.yaml"
    exec nohup "$TOOLS_BIN/temporal-server" --root "$PROJECT_ROOT/deploy/temporal" --config config \
      --env production --allow-no-auth start >>"$SERVER_LOG" 2>&1
  ) &
  echo $! >"$SERVER_PID"
}

wait_until_healthy() {
  for _ in $(seq 1 120); do
    if healthy; then return 0; fi
    running_pid "$SERVER_PID" temporal-server >/dev/null ||
      die "the Temporal server exited (see $(relative "$SERVER_LOG"))."
    sleep 1
  done
  die "the Temporal server did not become healthy in 120s (see $(relative "$SERVER_LOG"))."
}

start_ui() {
  if running_pid "$UI_PID" temporal-ui-server >/dev/null; then return 0; fi
  port_open "$UI_PORT" && die "port $UI_PORT (Web UI) is in use: choose another PRODUCTION_STACK_PORT."
  TEMPORAL_ADDRESS="127.0.0.1:$PORT" TEMPORAL_UI_PORT="$UI_PORT" TEMPORAL_TLS_CA="$TLS_DIR/ca.pem" \
    TEMPORAL_TLS_CERT="$TLS_DIR/temporal-ui.pem" TEMPORAL_TLS_KEY="$TLS_DIR/temporal-ui-key.pem" \
    TEMPORAL_TLS_SERVER_NAME=localhost \
    nohup "$TOOLS_BIN/temporal-ui-server" --root "$PROJECT_ROOT/deploy/temporal" --config ui --env production start \
    >>"$UI_LOG" 2>&1 &
  echo $! >"$UI_PID"
  for _ in $(seq 1 60); do
    if port_open "$UI_PORT"; then return 0; fi
    running_pid "$UI_PID" temporal-ui-server >/dev/null || die "the Web UI server exited (see $(relative "$UI_LOG"))."
    sleep 0.5
  done
  die "the Web UI server did not listen on $UI_PORT within 30s (see $(relative "$UI_LOG"))."
}

register_namespace() {
  (
    while IFS= read -r setting; do export "${setting?}"; done < <(client_tls_env)
    NAMESPACE="$NAMESPACE" NAMESPACE_RETENTION=30d sh deploy/temporal/setup-namespace.sh >>"$SETUP_LOG" 2>&1
  ) || die "registering the namespace and search attributes failed (see $(relative "$SETUP_LOG"))."
}

# --- commands --------------------------------------------------------------------------------------------

start() {
  local started_at
  started_at=$(now)
  command -v psql >/dev/null || die "psql is required (apt-get install postgresql-client)."
  # A fresh clone: npm dependencies, the local PostgreSQL and the compiled service, as for the dev setup
  # (which leaves its dev server alone when TEMPORAL_ADDRESS points elsewhere).
  if [ ! -d node_modules ] || [ ! -f dist/workers/migrate.js ]; then
    TEMPORAL_ADDRESS="127.0.0.1:$PORT" bash scripts/setup.sh
  fi
  if [ "$PG_HOST:$PG_PORT" = 127.0.0.1:5432 ]; then bash scripts/postgres.sh; fi
  env -u TEMPORAL_ADDRESS bash scripts/install-temporal-cli.sh
  build
  mkdir -p "$STACK_DIR"
  bash scripts/tls-certificates.sh "$TLS_DIR"
  setup_databases
  start_server
  wait_until_healthy
  register_namespace
  setup_service_database
  start_ui
  say "production stack ready in $(($(now) - started_at))s: Temporal 127.0.0.1:$PORT (TLS), Web UI http://127.0.0.1:$UI_PORT"
  say "worker: eval \"\$(bash scripts/production-stack.sh env)\" && npm run worker"
}

stop() {
  stop_process "$UI_PID" temporal-ui-server
  stop_process "$SERVER_PID" temporal-server
}

status() {
  local pid
  if pid="$(running_pid "$SERVER_PID" temporal-server)"; then
    if healthy; then echo "temporal-server  pid $pid  127.0.0.1:$PORT  healthy (TLS, mTLS $MTLS)"; else
      echo "temporal-server  pid $pid  127.0.0.1:$PORT  not answering"; fi
  else
    echo "temporal-server  stopped"
  fi
  if pid="$(running_pid "$UI_PID" temporal-ui-server)"; then
    echo "temporal-ui      pid $pid  http://127.0.0.1:$UI_PORT"
  else
    echo "temporal-ui      stopped"
  fi
  echo "databases        $TEMPORAL_DB, $VISIBILITY_DB (role $TEMPORAL_ROLE); $VMS_DB (owner $VMS_OWNER, worker $VMS_WORKER)"
  echo "data             $(relative "$STACK_DIR")"
  running_pid "$SERVER_PID" temporal-server >/dev/null
}

print_env() {
  local who="${1:-worker}" url_file
  case "$who" in
    worker) url_file="$SECRETS_DIR/worker-database-url" ;;
    owner) url_file="$SECRETS_DIR/owner-database-url" ;;
    temporal) url_file="" ;;
    *) die "env takes worker, owner or temporal, not $who" ;;
  esac
  [ -f "$SECRETS_DIR/worker-database-url" ] ||
    die "the stack on port $PORT was never started: bash scripts/production-stack.sh start"
  client_tls_env | sed 's/^/export /'
  if [ -n "$url_file" ]; then
    echo "export DATABASE_URL_FILE=$url_file"
    echo "unset DATABASE_URL"
  fi
}

reset() {
  stop
  psql "$(superuser_url postgres)" -q -v ON_ERROR_STOP=1 <<SQL
DROP DATABASE IF EXISTS "$TEMPORAL_DB" WITH (FORCE);
DROP DATABASE IF EXISTS "$VISIBILITY_DB" WITH (FORCE);
DROP DATABASE IF EXISTS "$VMS_DB" WITH (FORCE);
DROP ROLE IF EXISTS "$VMS_WORKER";
DROP ROLE IF EXISTS "$VMS_OWNER";
DROP ROLE IF EXISTS "$TEMPORAL_ROLE";
SQL
  rm -rf "$STACK_DIR"
  say "production stack on port $PORT removed (databases, roles, $(relative "$STACK_DIR"))"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  pid) running_pid "$SERVER_PID" temporal-server ;;
  env) print_env "${2:-worker}" ;;
  reset) reset ;;
  *) die "usage: bash scripts/production-stack.sh start|stop|status|pid|env [worker|owner|temporal]|reset" ;;
esac
