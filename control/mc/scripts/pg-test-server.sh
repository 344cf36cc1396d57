#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on 127.0.0.1 for the MC store's PostgreSQL conformance tests.
#
#   pg-test-server.sh start [STATE_DIR]   initdb a fresh cluster (Debian package `postgresql`;
#                                         installs nothing) and start it, wait until it accepts
#                                         connections, then print its URL,
#                                         postgres://edgeplane@127.0.0.1:PORT/postgres
#   pg-test-server.sh url [STATE_DIR]     print the running server's URL
#   pg-test-server.sh stop [STATE_DIR]    stop it (pg_ctl -m fast) and delete its data
#
# Typical use:
#   EDGEPLANE_PG_URL=$(control/mc/scripts/pg-test-server.sh start)
#   export EDGEPLANE_PG_URL
#   trap 'control/mc/scripts/pg-test-server.sh stop' EXIT
#
# STATE_DIR (default $EDGEPLANE_PG_STATE or ${TMPDIR:-/tmp}/edgeplane-pg-test) holds the URL
# and the path of the cluster's directory, a fresh `mktemp -d` under ${TMPDIR:-/tmp} with the
# data directory, the socket and postgres.log (separate, because STATE_DIR may sit where the
# server's user cannot reach). The cluster trusts local connections (user `edgeplane`,
# superuser, no password), runs with fsync off and little WAL kept (tests create a database
# each), and listens on 127.0.0.1 only, on a free port picked at random, so several servers
# (different STATE_DIRs) can run side by side. initdb refuses to run as root: as root the
# cluster belongs to, and runs as, the `postgres` user.
# The binaries are found in /usr/lib/postgresql/*/bin (newest version), else on PATH. Progress
# goes to stderr; only the URL goes to stdout. `start` on a running server just prints its URL
# again; `stop` removes the cluster's directory and STATE_DIR.
set -euo pipefail

cmd=${1:-}
state=${2:-${EDGEPLANE_PG_STATE:-${TMPDIR:-/tmp}/edgeplane-pg-test}}

say() { printf 'pg-test-server: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# The directory holding initdb and pg_ctl.
pgbin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -n $dir && -x $dir/initdb ]]; then
    echo "$dir"
  elif command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
  else
    die "initdb not found: install Debian's PostgreSQL (apt-get install -y postgresql)"
  fi
}

# Runs a command as the cluster's owner: `postgres` when we are root, else ourselves.
as_owner() {
  if [[ $(id -u) == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# The cluster's directory, if STATE_DIR records one.
cluster() { [[ -f $state/cluster ]] && cat "$state/cluster"; }

running() {
  local dir
  dir=$(cluster) || return 1
  [[ -f $dir/data/postmaster.pid ]] && as_owner "$(pgbin)/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

# True when something accepts connections on 127.0.0.1:$1.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  local port
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % 40000))
    port_busy "$port" || { echo "$port"; return; }
  done
  die "no free port found"
}

start() {
  local bin attempt port dir
  bin=$(pgbin)
  if running; then
    say "already running (state $state)"
    cat "$state/url"
    return
  fi
  if [[ $(id -u) == 0 ]]; then
    id postgres >/dev/null 2>&1 || die "running as root but there is no postgres user to run the server"
  fi
  stop_cluster
  mkdir -p "$state"
  dir=$(mktemp -d "${TMPDIR:-/tmp}/edgeplane-pg.XXXXXX")
  echo "$dir" >"$state/cluster"
  if [[ $(id -u) == 0 ]]; then
    chown postgres: "$dir"
    runuser -u postgres -- test -w "$dir" ||
      die "the postgres user cannot write $dir (is ${TMPDIR:-/tmp} reachable for it?)"
  fi
  as_owner "$bin/initdb" -D "$dir/data" -A trust -U edgeplane -E UTF8 --locale=C.UTF-8 \
    --no-sync >"$dir/initdb.log" 2>&1 || {
    tail -n 5 "$dir/initdb.log" >&2
    die "initdb failed; see $dir/initdb.log"
  }
  # A port can be taken between picking and binding; then the start fails and we pick again.
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 30 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_wal_size=64MB" start >/dev/null 2>&1; then
      echo "postgres://edgeplane@127.0.0.1:$port/postgres" >"$state/url"
      say "ready at postgres://edgeplane@127.0.0.1:$port/postgres (cluster $dir, $bin)"
      cat "$state/url"
      return
    fi
    say "postgres did not start (attempt $attempt); log tail:"
    tail -n 5 "$dir/postgres.log" >&2 || true
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  done
  die "postgres failed to start after 5 attempts; see $dir/postgres.log"
}

# Stops the recorded cluster, if any, and removes its directory.
stop_cluster() {
  local dir
  dir=$(cluster) || return 0
  if [[ -f $dir/data/postmaster.pid ]]; then
    as_owner "$(pgbin)/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
      as_owner "$(pgbin)/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    say "stopped (cluster $dir)"
  fi
  # Only ever a directory this script made.
  [[ $dir == */edgeplane-pg.* ]] && rm -rf "$dir"
  rm -f "$state/cluster"
}

stop() {
  stop_cluster
  rm -rf "$state"
}

case $cmd in
  start) start ;;
  stop) stop ;;
  url) running || die "not running (state $state)"; cat "$state/url" ;;
  *) sed -n '2,26p' "$0" >&2; exit 2 ;;
esac
