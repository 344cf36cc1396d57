#!/usr/bin/env bash
# A throwaway single-node etcd on 127.0.0.1 for edge-store's etcd conformance tests.
#
#   etcd-test-server.sh start [STATE_DIR]    start it (installing Debian etcd-server if `etcd`
#                                            is missing), wait until /health says true, then
#                                            print its endpoint, http://127.0.0.1:PORT
#   etcd-test-server.sh endpoint [STATE_DIR] print the running server's endpoint
#   etcd-test-server.sh stop [STATE_DIR]     stop it and delete its data
#
# Typical use:
#   EDGEPLANE_ETCD_ENDPOINTS=$(control/store/scripts/etcd-test-server.sh start)
#   export EDGEPLANE_ETCD_ENDPOINTS
#   trap 'control/store/scripts/etcd-test-server.sh stop' EXIT
#
# STATE_DIR (default $EDGEPLANE_ETCD_STATE or ${TMPDIR:-/tmp}/edgeplane-etcd-test) holds the
# pidfile, the endpoint, the data directory and etcd.log. Ports are picked free at random, so
# several servers (different STATE_DIRs) can run side by side. Progress goes to stderr; only the
# endpoint goes to stdout. `start` on a running server just prints its endpoint again.
set -euo pipefail

cmd=${1:-}
state=${2:-${EDGEPLANE_ETCD_STATE:-${TMPDIR:-/tmp}/edgeplane-etcd-test}}
pidfile=$state/etcd.pid

say() { printf 'etcd-test-server: %s\n' "$*" >&2; }
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

# GET /health; curl when present, else bash's /dev/tcp (curl is not on every machine).
healthy() {
  local port=$1 body
  if command -v curl >/dev/null 2>&1; then
    body=$(curl -sf --max-time 1 "http://127.0.0.1:$port/health") || return 1
  else
    body=$( (exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
             printf 'GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
             timeout 1 cat <&3) 2>/dev/null) || return 1
  fi
  [[ $body == *'"health":"true"'* ]]
}

install_etcd() {
  command -v etcd >/dev/null 2>&1 && return
  say "etcd not found: installing Debian etcd-server"
  [[ $(id -u) == 0 ]] || die "need root to apt-get install etcd-server"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq etcd-server >&2
  command -v etcd >/dev/null 2>&1 || die "etcd-server installed but no etcd binary on PATH"
}

start() {
  if running; then
    say "already running (pid $(cat "$pidfile"))"
    cat "$state/endpoint"
    return
  fi
  install_etcd
  mkdir -p "$state"
  local attempt client peer pid
  # A port can be taken between picking and binding; then etcd exits and we pick again.
  for attempt in 1 2 3 4 5; do
    client=$(free_port)
    peer=$(free_port)
    [[ $client != "$peer" ]] || continue
    rm -rf "$state/data"
    etcd --name edge-store-test --data-dir "$state/data" \
      --listen-client-urls "http://127.0.0.1:$client" \
      --advertise-client-urls "http://127.0.0.1:$client" \
      --listen-peer-urls "http://127.0.0.1:$peer" \
      --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
      --initial-cluster "edge-store-test=http://127.0.0.1:$peer" \
      --logger zap --log-outputs "$state/etcd.log" </dev/null >/dev/null 2>&1 &
    pid=$!
    echo "$pid" >"$pidfile"
    # Ready in about a second on a fresh data dir; allow 30 s for a loaded machine.
    for _ in $(seq 600); do
      if ! kill -0 "$pid" 2>/dev/null; then
        say "etcd exited during start-up (attempt $attempt); log tail:"
        tail -n 5 "$state/etcd.log" >&2 || true
        continue 2
      fi
      if healthy "$client"; then
        echo "http://127.0.0.1:$client" >"$state/endpoint"
        say "ready at http://127.0.0.1:$client (pid $pid, state $state)"
        echo "http://127.0.0.1:$client"
        return
      fi
      sleep 0.05
    done
    kill "$pid" 2>/dev/null || true
    die "etcd did not become healthy within 30 s; see $state/etcd.log"
  done
  die "etcd failed to start after 5 attempts; see $state/etcd.log"
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
  endpoint) running || die "not running (state $state)"; cat "$state/endpoint" ;;
  *) sed -n '2,18p' "$0" >&2; exit 2 ;;
esac
