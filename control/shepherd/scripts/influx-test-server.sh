#!/usr/bin/env bash
# A throwaway InfluxDB 1.x on 127.0.0.1 for shepherd's integration tests.
#
#   influx-test-server.sh start [STATE_DIR]  start `influxd run` (Debian package `influxdb`;
#                                            installs nothing), wait until /ping answers, then
#                                            print its URL, http://127.0.0.1:PORT
#   influx-test-server.sh url [STATE_DIR]    print the running server's URL
#   influx-test-server.sh stop [STATE_DIR]   stop it and delete its data
#
# Typical use:
#   EDGEPLANE_INFLUX_URL=$(control/shepherd/scripts/influx-test-server.sh start)
#   export EDGEPLANE_INFLUX_URL
#   trap 'control/shepherd/scripts/influx-test-server.sh stop' EXIT
#
# STATE_DIR (default $EDGEPLANE_INFLUX_STATE or ${TMPDIR:-/tmp}/edgeplane-influx-test) holds the
# pidfile, the URL, the meta/data/wal directories and influxd.log. Ports are picked free at
# random, so several servers (different STATE_DIRs) can run side by side. No configuration file
# is read (`-config /dev/null`): everything is set here, usage reporting off. Progress goes to
# stderr; only the URL goes to stdout. `start` on a running server just prints its URL again.
set -euo pipefail

cmd=${1:-}
state=${2:-${EDGEPLANE_INFLUX_STATE:-${TMPDIR:-/tmp}/edgeplane-influx-test}}
pidfile=$state/influxd.pid

say() { printf 'influx-test-server: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

running() { [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

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

# GET /ping answers 204 once the HTTP service is up; curl when present, else bash's /dev/tcp.
pong() {
  local port=$1 head
  if command -v curl >/dev/null 2>&1; then
    curl -sf --max-time 1 -o /dev/null "http://127.0.0.1:$port/ping"
  else
    head=$( (exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
             printf 'GET /ping HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
             timeout 1 head -n 1 <&3) 2>/dev/null) || return 1
    [[ $head == *' 204 '* ]]
  fi
}

start() {
  if running; then
    say "already running (pid $(cat "$pidfile"))"
    cat "$state/url"
    return
  fi
  command -v influxd >/dev/null 2>&1 ||
    die "influxd not found: install Debian's InfluxDB (apt-get install -y influxdb influxdb-client)"
  mkdir -p "$state"
  local attempt http rpc pid
  # A port can be taken between picking and binding; then influxd exits and we pick again.
  for attempt in 1 2 3 4 5; do
    http=$(free_port)
    rpc=$(free_port)
    [[ $http != "$rpc" ]] || continue
    rm -rf "$state/meta" "$state/data" "$state/wal"
    INFLUXDB_REPORTING_DISABLED=true \
    INFLUXDB_BIND_ADDRESS="127.0.0.1:$rpc" \
    INFLUXDB_HTTP_BIND_ADDRESS="127.0.0.1:$http" \
    INFLUXDB_HTTP_LOG_ENABLED=false \
    INFLUXDB_META_DIR="$state/meta" \
    INFLUXDB_DATA_DIR="$state/data" \
    INFLUXDB_DATA_WAL_DIR="$state/wal" \
    INFLUXDB_DATA_QUERY_LOG_ENABLED=false \
    INFLUXDB_MONITOR_STORE_ENABLED=false \
      influxd run -config /dev/null </dev/null >"$state/influxd.log" 2>&1 &
    pid=$!
    echo "$pid" >"$pidfile"
    # Ready in well under a second; allow 30 s for a loaded machine.
    for _ in $(seq 600); do
      if ! kill -0 "$pid" 2>/dev/null; then
        say "influxd exited during start-up (attempt $attempt); log tail:"
        tail -n 5 "$state/influxd.log" >&2 || true
        continue 2
      fi
      if pong "$http"; then
        echo "http://127.0.0.1:$http" >"$state/url"
        say "ready at http://127.0.0.1:$http (pid $pid, state $state)"
        echo "http://127.0.0.1:$http"
        return
      fi
      sleep 0.05
    done
    kill "$pid" 2>/dev/null || true
    die "influxd did not answer /ping within 30 s; see $state/influxd.log"
  done
  die "influxd failed to start after 5 attempts; see $state/influxd.log"
}

stop() {
  if running; then
    local pid
    pid=$(cat "$pidfile")
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    say "stopped (pid $pid)"
  fi
  rm -rf "$state"
}

case $cmd in
  start) start ;;
  stop) stop ;;
  url) running || die "not running (state $state)"; cat "$state/url" ;;
  *) sed -n '2,19p' "$0" >&2; exit 2 ;;
esac
