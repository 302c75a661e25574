#!/bin/sh
# Creates or upgrades Temporal's two PostgreSQL databases (persistence and visibility) to the schema of
# this admin-tools version. Runs at every start of the stack: versions already applied are skipped.
set -eu
schema_dir=/etc/temporal/schema/postgresql/v12

sql_tool() {
  database=$1
  shift
  temporal-sql-tool --plugin postgres12 --endpoint "$POSTGRES_SEEDS" --port "$DB_PORT" \
    --user "$POSTGRES_USER" --password "$POSTGRES_PWD" --database "$database" "$@"
}

for pair in temporal:temporal temporal_visibility:visibility; do
  database=${pair%%:*}
  schema=${pair#*:}
  sql_tool "$database" create-database 2>/dev/null || echo "database $database already exists"
  sql_tool "$database" setup-schema -v 0.0
  sql_tool "$database" update-schema -d "$schema_dir/$schema/versioned"
done
echo "Temporal schema ready"
