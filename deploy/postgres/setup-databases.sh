#!/bin/sh
# Temporal's role and its two databases, and the failover service's owner role and database: the SQL files
# beside this script, run as a superuser. Idempotent. Used by scripts/production-stack.sh and
# docker-compose.yml, with the variables of deploy/temporal/config/production.yaml for Temporal's part.
#   SUPERUSER_URL   postgres://postgres@host:5432/postgres (a password in PGPASSWORD, not in the URL)
#   TEMPORAL_SERVER_DB_USER, TEMPORAL_SERVER_DB_PASSWORD, TEMPORAL_SERVER_DB_NAME,
#   TEMPORAL_SERVER_VISIBILITY_DB_NAME
#   VMS_DB_OWNER, VMS_DB_OWNER_PASSWORD, VMS_DB_NAME
set -eu
: "${SUPERUSER_URL:?}" "${TEMPORAL_SERVER_DB_PASSWORD:?}" "${VMS_DB_OWNER:?}" "${VMS_DB_OWNER_PASSWORD:?}" "${VMS_DB_NAME:?}"
dir=$(dirname "$0")

attempts=0
until psql "$SUPERUSER_URL" -c 'SELECT 1' >/dev/null 2>&1; do
  attempts=$((attempts + 1))
  [ "$attempts" -lt 30 ] || { echo "PostgreSQL does not accept $SUPERUSER_URL" >&2; exit 1; }
  sleep 2
done

ROLE_PASSWORD="$TEMPORAL_SERVER_DB_PASSWORD" psql "$SUPERUSER_URL" -q -v ON_ERROR_STOP=1 \
  -v role="${TEMPORAL_SERVER_DB_USER:-temporal}" -v database="${TEMPORAL_SERVER_DB_NAME:-temporal}" \
  -v visibility_database="${TEMPORAL_SERVER_VISIBILITY_DB_NAME:-temporal_visibility}" \
  -f "$dir/temporal-databases.sql"
ROLE_PASSWORD="$VMS_DB_OWNER_PASSWORD" psql "$SUPERUSER_URL" -q -v ON_ERROR_STOP=1 \
  -v owner="$VMS_DB_OWNER" -v database="$VMS_DB_NAME" -f "$dir/vms-database.sql"
echo "databases ready"
