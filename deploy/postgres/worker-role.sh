#!/bin/sh
# Creates or updates the worker's least-privilege role (deploy/least-privilege.sql) in the failover
# service's database, after the owner has migrated it. Idempotent: on an existing role the grants are applied
# again (a newer migration may have added tables) and its password is set. Used by
# scripts/production-stack.sh and docker-compose.yml.
#   worker-role.sh POSTGRES_URL WORKER_ROLE PASSWORD_FILE
# POSTGRES_URL: a superuser connection to the service's database (CREATE ROLE needs one).
set -eu
url=$1
role=$2
password_file=$3
grants="$(dirname "$0")/../least-privilege.sql"

exists=$(psql "$url" -v ON_ERROR_STOP=1 -At -v role="$role" <<'SQL'
SELECT count(*) FROM pg_roles WHERE rolname = :'role';
SQL
)
if [ "$exists" = 0 ]; then
  psql "$url" -q -v ON_ERROR_STOP=1 -v worker_role="$role" -f "$grants"
else
  # The CREATE ROLE line is the one statement that cannot run twice.
  sed '/^CREATE ROLE /d' "$grants" | psql "$url" -q -v ON_ERROR_STOP=1 -v worker_role="$role"
fi
ROLE_PASSWORD="$(cat "$password_file")" psql "$url" -q -v ON_ERROR_STOP=1 -v role="$role" <<'SQL'
\getenv password ROLE_PASSWORD
ALTER ROLE :"role" PASSWORD :'password';
SQL
