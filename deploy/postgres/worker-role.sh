#!/bin/sh
# Creates or updates the worker's least-privilege role (deploy/least-privilege.sql) in the failover
# service's database, after the owner has migrated it. Idempotent: on an existing role the grants are applied
# again (a newer migration may have added tables) and its password is set. Used by
# scripts/production-stack.sh and docker-compose.yml.
#   SUPERUSER_URL   a superuser connection to the service's database (CREATE ROLE needs one)
#   WORKER_ROLE     the role's name
#   ROLE_PASSWORD   its password (in the environment, never on a command line)
set -eu
: "${SUPERUSER_URL:?}" "${WORKER_ROLE:?}" "${ROLE_PASSWORD:?}"
grants="$(dirname "$0")/../least-privilege.sql"

exists=$(psql "$SUPERUSER_URL" -v ON_ERROR_STOP=1 -At -v role="$WORKER_ROLE" <<'SQL'
SELECT count(*) FROM pg_roles WHERE rolname = :'role';
SQL
)
if [ "$exists" = 0 ]; then
  psql "$SUPERUSER_URL" -q -v ON_ERROR_STOP=1 -v worker_role="$WORKER_ROLE" -f "$grants"
else
  # The CREATE ROLE line is the one statement that cannot run twice.
  sed '/^CREATE ROLE /d' "$grants" | psql "$SUPERUSER_URL" -q -v ON_ERROR_STOP=1 -v worker_role="$WORKER_ROLE"
fi
psql "$SUPERUSER_URL" -q -v ON_ERROR_STOP=1 -v role="$WORKER_ROLE" <<'SQL'
\getenv password ROLE_PASSWORD
ALTER ROLE :"role" PASSWORD :'password';
SQL
echo "worker role $WORKER_ROLE ready"
