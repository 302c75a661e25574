#!/bin/sh
# Runs once, when the PostgreSQL volume is first initialised: the failover worker's own role and database,
# apart from Temporal's databases, so neither can touch the other's tables.
set -eu
psql --username "$POSTGRES_USER" --dbname postgres -v ON_ERROR_STOP=1 \
  -v vms_password="$VMS_DB_PASSWORD" <<'SQL'
CREATE ROLE vms_failover LOGIN PASSWORD :'vms_password';
CREATE DATABASE vms_failover OWNER vms_failover;
SQL
