#!/usr/bin/env bash
# The browser tests' cluster (end2end/cluster.config.ts starts this): a PostgreSQL and a
# Redis of its own, then scripts/cluster as anyone would run it (three nodes of the release
# build behind nginx on 127.0.0.1:3000). Meant for the private network namespace of
# scripts/test, where the machine's own databases are out of reach; it uses the same ports
# (5432, 6379) there. SIGTERM stops the nodes gracefully, then the databases.
#
#   QC_E2E_CLUSTER_DIR   where everything goes (deleted first)
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${QC_E2E_CLUSTER_DIR:?}"
rm -rf "$dir"
mkdir -p "$dir/pg"

pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
as_postgres() { runuser -u postgres -- "$@"; }
chown postgres "$dir/pg"

cluster_pid=
stop() {
  trap - INT TERM EXIT
  if [ -n "$cluster_pid" ]; then
    kill -TERM "$cluster_pid" 2>/dev/null || true
    wait "$cluster_pid" 2>/dev/null || true
  fi
  redis-cli -p 6379 shutdown nosave >/dev/null 2>&1 || true
  as_postgres "$pgbin/pg_ctl" -D "$dir/pg" -m fast stop >/dev/null 2>&1 || true
}
trap stop INT TERM EXIT

# Durability is not under test here: fsync off keeps the run fast.
as_postgres "$pgbin/initdb" -D "$dir/pg" -U postgres -A trust --no-sync >/dev/null
as_postgres "$pgbin/pg_ctl" -D "$dir/pg" -l "$dir/pg/log" -w start \
  -o "-c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir/pg -c fsync=off -c max_connections=200" >/dev/null
redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no --daemonize yes \
  --logfile "$dir/redis.log" --pidfile "$dir/redis.pid"

# As in playwright.config.ts: every test registers its people from one address.
export REGISTER_MAX_PER_IP=100000 CONTACT_REQUESTS_PER_HOUR=100000 CALL_RING_SECS=6 CALL_RESUME_SECS=5 RUST_LOG=warn
QC_CLUSTER_NO_BUILD=1 CLUSTER_DIR="$dir/cluster" scripts/cluster &
cluster_pid=$!
wait "$cluster_pid"
