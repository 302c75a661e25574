-- The failover service's database and the role that owns it: the owner migrates the schema and imports
-- sites; the worker runs as the narrower role of deploy/least-privilege.sql, granted once the owner has
-- migrated. Idempotent, like temporal-databases.sql. Run as a superuser with psql, the password in
-- ROLE_PASSWORD:
--   psql -v ON_ERROR_STOP=1 -v owner=vms_failover -v database=vms_failover \
--        -f deploy/postgres/vms-database.sql

SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION', :'owner')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'owner') \gexec
-- The password comes from the environment of psql (ROLE_PASSWORD), never from its command line.
\getenv password ROLE_PASSWORD
ALTER ROLE :"owner" PASSWORD :'password';

SELECT format('CREATE DATABASE %I OWNER %I', :'database', :'owner')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'database') \gexec
