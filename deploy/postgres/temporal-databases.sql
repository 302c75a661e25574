-- Temporal's own role and its two databases (persistence and visibility): the role owns them and nothing
-- else, and no other role may connect to them. Idempotent: an existing role gets its password set again,
-- existing databases are kept. Run as a superuser with psql, the role's password in ROLE_PASSWORD
-- (scripts/production-stack.sh, deploy/postgres/init-databases.sh):
--   psql -v ON_ERROR_STOP=1 -v role=temporal -v database=temporal \
--        -v visibility_database=temporal_visibility -f deploy/postgres/temporal-databases.sql
-- The schema is applied afterwards as that role, with temporal-sql-tool.

SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION', :'role')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
-- The password comes from the environment of psql (ROLE_PASSWORD), never from its command line.
\getenv password ROLE_PASSWORD
ALTER ROLE :"role" PASSWORD :'password';

SELECT format('CREATE DATABASE %I OWNER %I', :'database', :'role')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'database') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'visibility_database', :'role')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'visibility_database') \gexec

REVOKE ALL ON DATABASE :"database", :"visibility_database" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"database", :"visibility_database" TO :"role";
