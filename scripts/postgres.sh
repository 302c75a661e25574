#!/usr/bin/env bash
# Makes a PostgreSQL server reachable: DATABASE_URL when set, else the local server on 127.0.0.1:5432
# (started when installed but stopped), else an embedded PostgreSQL (PGlite) served on 127.0.0.1:5432.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PROJECT_ROOT"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [ -n "${DATABASE_URL:-}" ]; then
  say "using DATABASE_URL"
  exit 0
fi
if port_open 5432; then
  exit 0
fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  say "starting the local PostgreSQL server"
  for version in $(ls /etc/postgresql); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
  for _ in $(seq 1 30); do port_open 5432 && exit 0; sleep 1; done
  die "PostgreSQL is installed but did not come up on 127.0.0.1:5432 (see /var/log/postgresql)."
fi

say "no PostgreSQL server found: starting an embedded PostgreSQL (PGlite) on 127.0.0.1:5432, data in .data/pglite"
mkdir -p "$DATA_DIR"
nohup node dist/infra/embedded-postgres.js >"$DATA_DIR/embedded-postgres.log" 2>&1 &
for _ in $(seq 1 60); do port_open 5432 && exit 0; sleep 1; done
die "the embedded PostgreSQL did not start (see .data/embedded-postgres.log)."
