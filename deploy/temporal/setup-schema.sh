#!/bin/sh
# Creates or upgrades Temporal's schema in its two PostgreSQL databases (persistence and visibility), as
# Temporal's own role: the databases exist already (deploy/postgres/temporal-databases.sql, run as a
# superuser), so the role needs no right beyond owning them. Runs at every start of the stack: versions
# already applied are skipped. Used by scripts/production-stack.sh and docker-compose.yml, with the variables
# of deploy/temporal/config/production.yaml.
set -eu
: "${TEMPORAL_SERVER_DB_PASSWORD:?}"
schema_dir=${TEMPORAL_SCHEMA_DIR:-/etc/temporal/schema/postgresql/v12}

sql_tool() {
  database=$1
  shift
  # The password travels in the environment, not on the command line.
  SQL_PASSWORD="$TEMPORAL_SERVER_DB_PASSWORD" temporal-sql-tool --plugin postgres12 \
    --endpoint "${TEMPORAL_SERVER_DB_HOST:-127.0.0.1}" --port "${TEMPORAL_SERVER_DB_PORT:-5432}" \
    --user "${TEMPORAL_SERVER_DB_USER:-temporal}" --database "$database" "$@"
}

for pair in "${TEMPORAL_SERVER_DB_NAME:-temporal}:temporal" \
  "${TEMPORAL_SERVER_VISIBILITY_DB_NAME:-temporal_visibility}:visibility"; do
  database=${pair%%:*}
  schema=${pair#*:}
  sql_tool "$database" setup-schema -v 0.0
  sql_tool "$database" update-schema -d "$schema_dir/$schema/versioned"
done
echo "Temporal schema ready"
