#!/usr/bin/env bash
# compare.sh -- the root LB side by side with HAProxy (mode tcp) and nginx stream on 127.0.0.1.
#
# Same backends, same single worker for every proxy, repetitions interleaved across targets.
# Measures: keep-alive req/s + latency (wrk), new connection per request (wrk, Connection: close),
# HTTP bulk (10 MiB file), iperf3 TCP and UDP (UDP: goodput at the server and loss), proxy CPU per
# request, memory per idle proxied connection, and requests failed while the root LB's routes file
# changes 10 times a second.
#
# Usage (from the workspace root; needs haproxy nginx libnginx-mod-stream wrk iperf3 python3):
#   dataplane/loadtest/compare.sh                 # DUR=10 REPS=3
#   DUR=5 REPS=1 ONLY="direct rootlb-splice" dataplane/loadtest/compare.sh
#   TESTS="iperf-udp iperf-tcp" ...    # subset of: keepalive connclose bigfile iperf-tcp iperf-udp churn idle
#   UDP_WINDOW=4M UDP_RATE=3G ...      # iperf3 UDP socket buffers and offered rate (see below)
#   LB_BIN="/path/to/edgeplane rootlb" ...  # measure a prebuilt root LB command instead of building
#                                      # the shipped binary (`edgeplane rootlb`, mimalloc)
#   LB_OLD="/path/to/old/edgeplane rootlb" ...  # also measure an older build (auto mode) as "rootlb-old"
# Results: $WORK/results.csv and $WORK/summary.md (WORK defaults to /tmp/dp-compare).
# Every process started here is stopped by pid on exit. Only 127.0.0.1 is used.
set -u
DUR=${DUR:-10}; REPS=${REPS:-3}; CONNS=${CONNS:-50}; BIG_CONNS=${BIG_CONNS:-4}; IPERF_DUR=${IPERF_DUR:-5}
IDLE_N=${IDLE_N:-2000}; ONLY=${ONLY:-}; WORK=${WORK:-/tmp/dp-compare}
TESTS=${TESTS:-keepalive connclose bigfile iperf-tcp iperf-udp churn idle}; LB_BIN=${LB_BIN:-}; LB_OLD=${LB_OLD:-}
QUIET_PCT=${QUIET_PCT:-15}; QUIET_WAIT=${QUIET_WAIT:-60}
# UDP: offered rate (0 = flood, as the reference baseline) and the iperf3 socket buffers (-w;
# empty = iperf3's default, as the reference). The default server buffer holds about 90
# datagrams, so on two shared cores the iperf3 server itself drops much of what a proxy forwards
# while it waits for a core; UDP_WINDOW=4M moves the bottleneck back into the proxy.
UDP_RATE=${UDP_RATE:-0}; UDP_WINDOW=${UDP_WINDOW:-}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

for b in haproxy nginx wrk iperf3 python3; do command -v $b >/dev/null || { echo "missing $b (apt-get install haproxy nginx-light libnginx-mod-stream wrk iperf3)" >&2; exit 1; }; done
STREAM_MOD=/usr/lib/nginx/modules/ngx_stream_module.so
[ -e $STREAM_MOD ] || { echo "missing $STREAM_MOD (apt-get install libnginx-mod-stream)" >&2; exit 1; }
case "$WORK" in /|""|/tmp|/tmp/) echo "refusing WORK=$WORK" >&2; exit 1;; esac
if [ -e "$WORK" ] && [ ! -e "$WORK/.dp-compare" ]; then echo "$WORK is not ours" >&2; exit 1; fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [ -n "$LB_BIN" ]; then read -ra LB <<<"$LB_BIN"; else
  (cd "$ROOT" && cargo build --release -q -j 2 -p edgeplane) || exit 1
  LB=("$CARGO_TARGET_DIR/release/edgeplane" rootlb)
fi
read -ra LB_OLD_CMD <<<"$LB_OLD"
# Everything measured here (backends, proxies, load generators) runs ahead of unrelated
# background work on a shared box; all targets get the same priority.
renice -n "${NICE:--10}" $$ >/dev/null 2>&1 || true

rm -rf "$WORK"; mkdir -p "$WORK"/{www,tmp,logs}; touch "$WORK/.dp-compare"
head -c 1024 /dev/urandom | base64 -w0 | head -c 1024 > "$WORK/www/small"
head -c $((10*1024*1024)) /dev/urandom > "$WORK/www/big"

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done; sleep 1; for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done; }
trap cleanup EXIT INT TERM

# --- backends: nginx HTTP on 18080, iperf3 on 15201
cat > "$WORK/backend.conf" <<EOF
worker_processes 1; daemon off; pid $WORK/backend.pid; error_log $WORK/logs/backend.err warn;
events { worker_connections 16000; }
http { access_log off; sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 1000000; keepalive_timeout 120s;
  client_body_temp_path $WORK/tmp/cb; proxy_temp_path $WORK/tmp/p; fastcgi_temp_path $WORK/tmp/f;
  uwsgi_temp_path $WORK/tmp/u; scgi_temp_path $WORK/tmp/s; default_type application/octet-stream;
  server { listen 127.0.0.1:18080 backlog=4096; root $WORK/www; } }
EOF
nginx -p "$WORK" -c "$WORK/backend.conf" & PIDS+=($!); BACKEND_PID=$!
iperf3 -s -B 127.0.0.1 -p 15201 >"$WORK/logs/iperf3.log" 2>&1 & PIDS+=($!); IPERF_PID=$!

# --- HAProxy: 18081/15202 plain, 18083/15204 splice-auto
cat > "$WORK/haproxy.cfg" <<EOF
global
  maxconn 6000
  nbthread 1
defaults
  mode tcp
  timeout connect 5s
  timeout client 120s
  timeout server 120s
frontend fe_http
  bind 127.0.0.1:18081 backlog 4096
  default_backend be_http
backend be_http
  server s1 127.0.0.1:18080
frontend fe_bulk
  bind 127.0.0.1:15202
  default_backend be_bulk
backend be_bulk
  server s1 127.0.0.1:15201
frontend fe_http_s
  bind 127.0.0.1:18083 backlog 4096
  option splice-auto
  default_backend be_http_s
backend be_http_s
  option splice-auto
  server s1 127.0.0.1:18080
frontend fe_bulk_s
  bind 127.0.0.1:15204
  option splice-auto
  default_backend be_bulk_s
backend be_bulk_s
  option splice-auto
  server s1 127.0.0.1:15201
EOF
haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/logs/haproxy.log" 2>&1 & PIDS+=($!); HAPROXY_PID=$!

# --- nginx stream: 18082/15203 (tcp + udp)
cat > "$WORK/stream.conf" <<EOF
load_module $STREAM_MOD;
worker_processes 1; daemon off; pid $WORK/stream.pid; error_log $WORK/logs/stream.err warn;
events { worker_connections 16000; }
stream {
  server { listen 127.0.0.1:18082 backlog=4096; proxy_pass 127.0.0.1:18080; }
  server { listen 127.0.0.1:15203; proxy_pass 127.0.0.1:15201; }
  server { listen 127.0.0.1:15203 udp; proxy_pass 127.0.0.1:15201; }
}
EOF
nginx -p "$WORK" -c "$WORK/stream.conf" & PIDS+=($!); STREAM_PID=$!

# --- root LB, one worker thread each: splice on 28080/25201, user-space copy on 28090/25211,
#     auto (scratch-buffer copy, splice for bulk) on 28070/25191
routes() { # http_port bulk_port [extra listener port]
  echo "drain_grace: 5s"
  echo "defaults: {bind: 127.0.0.1}"
  echo "listeners:"
  echo "  - {proto: tcp, port: $1, backends: [\"127.0.0.1:18080\"]}"
  echo "  - {proto: tcp, port: $2, backends: [\"127.0.0.1:15201\"]}"
  echo "  - {proto: udp, port: $2, backends: [\"127.0.0.1:15201\"]}"
  [ -n "${3:-}" ] && echo "  - {proto: tcp, port: $3, backends: [\"127.0.0.1:18080\"]}"
  true
}
routes 28080 25201 > "$WORK/routes-splice.yaml"
routes 28090 25211 > "$WORK/routes-copy.yaml"
routes 28070 25191 > "$WORK/routes-auto.yaml"
RUST_LOG=info "${LB[@]}" --routes "$WORK/routes-splice.yaml" --threads 1 --copy-mode splice --reload-poll-ms 20 \
  --metrics-addr 127.0.0.1:29100 >"$WORK/logs/rootlb-splice.log" 2>&1 & PIDS+=($!); LBS_PID=$!
RUST_LOG=warn "${LB[@]}" --routes "$WORK/routes-copy.yaml" --threads 1 --copy-mode copy \
  >"$WORK/logs/rootlb-copy.log" 2>&1 & PIDS+=($!); LBC_PID=$!
RUST_LOG=warn "${LB[@]}" --routes "$WORK/routes-auto.yaml" --threads 1 --copy-mode auto \
  >"$WORK/logs/rootlb-auto.log" 2>&1 & PIDS+=($!); LBA_PID=$!
if [ -n "$LB_OLD" ]; then
  routes 28060 25181 > "$WORK/routes-old.yaml"
  RUST_LOG=warn "${LB_OLD_CMD[@]}" --routes "$WORK/routes-old.yaml" --threads 1 --copy-mode auto \
    >"$WORK/logs/rootlb-old.log" 2>&1 & PIDS+=($!); LBO_PID=$!
fi
sleep 1.5
for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null || { echo "pid $p failed to start; see $WORK/logs" >&2; tail "$WORK"/logs/*; exit 1; }; done

# name http_port bulk_port udp? cpu_pid
TARGETS=("direct 18080 15201 1 $BACKEND_PID"
         "haproxy 18081 15202 0 $HAPROXY_PID"
         "haproxy-splice 18083 15204 0 $HAPROXY_PID"
         "nginx-stream 18082 15203 1 $STREAM_PID"
         "rootlb-splice 28080 25201 1 $LBS_PID"
         "rootlb-copy 28090 25211 1 $LBC_PID"
         "rootlb-auto 28070 25191 1 $LBA_PID")
[ -n "$LB_OLD" ] && TARGETS+=("rootlb-old 28060 25181 1 $LBO_PID")

CLK=$(getconf CLK_TCK)
ticks() { local t=0 c; for c in $1 $(pgrep -P "$1" 2>/dev/null); do [ -r /proc/$c/stat ] && t=$((t + $(awk '{print $14+$15}' /proc/$c/stat))); done; echo $t; }
rss_kb() { local t=0 c; for c in $1 $(pgrep -P "$1" 2>/dev/null); do t=$((t + $(awk '/VmRSS/{print $2}' /proc/$c/status))); done; echo $t; }
busy() { local a b; a=($(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)); sleep 1
  b=($(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)); echo $(( (b[0]-a[0])*100 / (b[1]-a[1]>0 ? b[1]-a[1] : 1) )); }
BG=0; quiet() { local t0=$SECONDS; while :; do BG=$(busy); [ "$BG" -lt "$QUIET_PCT" ] && return; [ $((SECONDS-t0)) -ge "$QUIET_WAIT" ] && return; done; }
ms() { python3 -c "import sys,re;m=re.match(r'([\d.]+)(us|ms|s)',sys.argv[1]);print(round(float(m.group(1))*{'us':1e-3,'ms':1,'s':1e3}[m.group(2)],3))" "$1"; }
mibs() { python3 -c "import sys,re;m=re.match(r'([\d.]+)([KMG]?B)',sys.argv[1]);print(round(float(m.group(1))*{'B':2**-20,'KB':2**-10,'MB':1,'GB':1024}[m.group(2)],1))" "$1"; }

RES="$WORK/results.csv"; echo "target,test,rep,value,unit,p50_ms,p90_ms,p99_ms,errors,cpu_pct,bg_pct" > "$RES"
echo "target,rep,proxy_drops,sink_drops" > "$WORK/udp_drops.csv"
wrk_run() { # name port test path conns pid [header]
  local name=$1 port=$2 test=$3 path=$4 conns=$5 pid=$6; shift 6
  quiet; local c0; c0=$(ticks "$pid")
  local out; out=$(wrk -t1 -c"$conns" -d"${DUR}s" --latency "$@" "http://127.0.0.1:$port$path" 2>&1)
  local c1; c1=$(ticks "$pid"); echo "$out" > "$WORK/logs/wrk-$name-$test-$REP.txt"
  local rps tps p50 p90 p99 err cpu val unit
  rps=$(awk '/Requests\/sec/{print $2}' <<<"$out"); tps=$(awk '/Transfer\/sec/{print $2}' <<<"$out")
  p50=$(ms "$(awk '$1=="50%"{print $2}' <<<"$out")"); p90=$(ms "$(awk '$1=="90%"{print $2}' <<<"$out")"); p99=$(ms "$(awk '$1=="99%"{print $2}' <<<"$out")")
  err=$(awk '/Socket errors|Non-2xx/{gsub(/[^0-9 ]/," ");for(i=1;i<=NF;i++)t+=$i}END{print t+0}' <<<"$out")
  cpu=$(python3 -c "print(round(($c1-$c0)/$CLK/$DUR*100,1))")
  if [ "$test" = bigfile ]; then val=$(mibs "$tps"); unit=MiB/s; else val=$rps; unit=req/s; fi
  echo "$name,$test,$REP,$val,$unit,$p50,$p90,$p99,$err,$cpu,$BG" >> "$RES"
  echo "  $name $test: $val $unit p99=${p99}ms err=$err cpu=${cpu}% bg=${BG}%" >&2
  alive "$name" "$pid"
}
alive() { kill -0 "$2" 2>/dev/null || { echo "!! $1 (pid $2) is gone; see $WORK/logs" >&2; exit 1; }; }
iperf_run() { # name port mode pid
  local name=$1 port=$2 mode=$3 pid=$4 out bps loss c0 c1 cpu
  quiet; c0=$(ticks "$pid")
  if [ "$mode" = udp ]; then
    # Where the loss happens: receive-buffer drops at the proxy's listener vs at the iperf3 server.
    local dfile="$WORK/logs/udpdrops-$name-$REP.txt" pport=$port dpid pd sd
    [ "$port" = 15201 ] && pport=0
    python3 "$ROOT/dataplane/loadtest/udp_drops.py" "$pport" 15201 $((IPERF_DUR+2)) > "$dfile" & dpid=$!
    out=$(timeout $((IPERF_DUR+15)) iperf3 -c 127.0.0.1 -p "$port" -t "$IPERF_DUR" -u -b "$UDP_RATE" -l 1400 ${UDP_WINDOW:+-w "$UDP_WINDOW"} -J 2>&1)
    read -r bps loss < <(python3 -c "import json,sys;s=json.loads(sys.stdin.read())['end']['sum'];print(s['bits_per_second']*(1-s['lost_percent']/100), round(s['lost_percent'],1))" <<<"$out" 2>/dev/null || echo "0 100")
    wait "$dpid"; read -r pd sd < "$dfile" || true
    echo "$name,$REP,${pd:-},${sd:-}" >> "$WORK/udp_drops.csv"
    echo "  $name iperf-udp drops: ${pd:-?} at the proxy listener, ${sd:-?} at the iperf3 server" >&2
  else
    out=$(timeout $((IPERF_DUR+15)) iperf3 -c 127.0.0.1 -p "$port" -t "$IPERF_DUR" -J 2>&1); loss=0
    bps=$(python3 -c "import json,sys;print(json.loads(sys.stdin.read())['end']['sum_received']['bits_per_second'])" <<<"$out" 2>/dev/null || echo 0)
  fi
  c1=$(ticks "$pid"); echo "$out" > "$WORK/logs/iperf-$name-$mode-$REP.json"
  cpu=$(python3 -c "print(round(($c1-$c0)/$CLK/$IPERF_DUR*100,1))"); local gbs; gbs=$(python3 -c "print(round($bps/8/1e9,3))")
  echo "$name,iperf-$mode,$REP,$gbs,GB/s,,,,$loss,$cpu,$BG" >> "$RES"
  echo "  $name iperf-$mode: $gbs GB/s loss=$loss% cpu=${cpu}%" >&2; alive "$name" "$pid"; sleep 1
}
selected() { [ -z "$ONLY" ] && return 0; for o in $ONLY; do [ "$o" = "$1" ] && return 0; done; return 1; }
want() { for o in $TESTS; do [ "$o" = "$1" ] && return 0; done; return 1; }

for REP in $(seq 1 "$REPS"); do
  for t in "${TARGETS[@]}"; do
    read -r name hp bp udp pid <<<"$t"; selected "$name" || continue
    echo "== rep $REP: $name" >&2
    if [ "$name" != haproxy-splice ]; then
      want keepalive && wrk_run "$name" "$hp" keepalive /small "$CONNS" "$pid"
      want connclose && wrk_run "$name" "$hp" connclose /small "$CONNS" "$pid" -H "Connection: close"
    fi
    want bigfile && wrk_run "$name" "$hp" bigfile /big "$BIG_CONNS" "$pid"
    want iperf-tcp && iperf_run "$name" "$bp" tcp "$pid"
    [ "$udp" = 1 ] && want iperf-udp && iperf_run "$name" "$bp" udp "$pid"
  done
done

# --- route churn: the splice LB's routes file rewritten 10x/s (an extra listener added/removed)
if selected rootlb-splice && want churn; then
  echo "== route churn during keep-alive (rootlb-splice)" >&2
  ( end=$((SECONDS + DUR + 1)); i=0
    while [ $SECONDS -lt $end ]; do
      if [ $((i % 2)) = 0 ]; then routes 28080 25201 28081; else routes 28080 25201; fi > "$WORK/routes.tmp"
      mv "$WORK/routes.tmp" "$WORK/routes-splice.yaml"; i=$((i+1)); sleep 0.1
    done; echo "$i" > "$WORK/churn-count" ) &
  CHURN=$!
  REP=churn; wrk_run rootlb-splice 28080 keepalive-churn /small "$CONNS" "$LBS_PID"
  wait $CHURN
  applied=$(grep -c "routes reloaded" "$WORK/logs/rootlb-splice.log" || true)
  echo "  churn: $(cat "$WORK/churn-count") file rewrites, $applied tables applied in total" >&2
  echo "churn_rewrites=$(cat "$WORK/churn-count") tables_applied=$applied" > "$WORK/churn.txt"
fi

# --- memory per idle proxied connection (RSS delta / N)
echo "target,idle_conns,rss_before_kb,rss_after_kb,bytes_per_conn" > "$WORK/idle.csv"
for t in "${TARGETS[@]}"; do
  read -r name hp bp udp pid <<<"$t"; selected "$name" || continue
  [ "$name" = direct ] || [ "$name" = haproxy-splice ] || ! want idle && continue
  before=$(rss_kb "$pid")
  coproc IDLE { python3 "$ROOT/dataplane/loadtest/idle_conns.py" "$hp" "$IDLE_N" 4; }
  read -r line <&"${IDLE[0]}"; sleep 1
  after=$(rss_kb "$pid"); wait "$IDLE_PID"
  per=$(( (after - before) * 1024 / IDLE_N ))
  echo "$name,$IDLE_N,$before,$after,$per" >> "$WORK/idle.csv"
  echo "  $name idle: $line, RSS $before -> $after kB = $per B/conn" >&2
  sleep 2
done

python3 - "$RES" "$WORK/idle.csv" "$WORK/udp_drops.csv" > "$WORK/summary.md" <<'PY'
import csv, sys, statistics as st
from collections import defaultdict
rows = list(csv.DictReader(open(sys.argv[1])))
g = defaultdict(list)
for r in rows: g[(r['target'], r['test'])].append(r)
def med(rs, k):
    v = [float(r[k]) for r in rs if r[k] not in ('', None)]
    return st.median(v) if v else None
ha = {t: med(rs, 'value') for (n, t), rs in g.items() if n == 'haproxy'}
ng = {t: med(rs, 'value') for (n, t), rs in g.items() if n == 'nginx-stream'}
f = lambda x: "" if x is None else (f"{x:.3f}" if x < 10 else f"{x:.1f}")
rat = lambda v, b: f"{v/b:.2f}" if b and v is not None else "-"
print("| target | test | median | unit | vs haproxy | vs nginx-stream | p50 ms | p99 ms | errors (udp: loss %) | proxy CPU % | bg busy % | reps |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
order = ['direct', 'haproxy', 'haproxy-splice', 'nginx-stream', 'rootlb-splice', 'rootlb-copy', 'rootlb-auto', 'rootlb-old']
for (n, t), rs in sorted(g.items(), key=lambda kv: (kv[0][1], order.index(kv[0][0]) if kv[0][0] in order else 99)):
    v = med(rs, 'value'); base = t.replace('-churn', '')
    print(f"| {n} | {t} | {f(v)} | {rs[0]['unit']} | {rat(v, ha.get(base)) if n != 'haproxy' else '-'} | {rat(v, ng.get(base)) if n != 'nginx-stream' else '-'} | {f(med(rs,'p50_ms'))} | {f(med(rs,'p99_ms'))} | {'/'.join(r['errors'] for r in rs)} | {f(med(rs,'cpu_pct'))} | {'/'.join(r['bg_pct'] for r in rs)} | {len(rs)} |")
# Keep-alive latency (wrk --latency, CONNS connections): the p99 target is <= 1.1x HAProxy's.
ka = {n: rs for (n, t), rs in g.items() if t == 'keepalive'}
if ka:
    print()
    print("| target | keep-alive req/s | p50 ms | p99 ms | p99 / HAProxy p99 |")
    print("|---|---|---|---|---|")
    hp99 = med(ka['haproxy'], 'p99_ms') if 'haproxy' in ka else None
    for n in sorted(ka, key=lambda n: order.index(n) if n in order else 99):
        rs = ka[n]; p99 = med(rs, 'p99_ms')
        print(f"| {n} | {f(med(rs,'value'))} | {f(med(rs,'p50_ms'))} | {f(p99)} | {rat(p99, hp99) if n != 'haproxy' else '-'} |")
drops = list(csv.DictReader(open(sys.argv[3])))
if drops:
    # UDP: a proxy can only deliver what the sink reads; drops at the sink mean the proxy
    # forwarded more than the iperf3 server could take on its share of the cores.
    print()
    print("| target | UDP datagrams dropped at the proxy listener (median) | at the iperf3 server (median) | reps |")
    print("|---|---|---|---|")
    dg = defaultdict(list)
    for r in drops: dg[r['target']].append(r)
    for n in sorted(dg, key=lambda n: order.index(n) if n in order else 99):
        rs = dg[n]
        d = lambda k: "" if med(rs, k) is None else f"{med(rs, k):,.0f}"
        print(f"| {n} | {d('proxy_drops')} | {d('sink_drops')} | {len(rs)} |")
print()
print("| target | idle conns | RSS before kB | RSS after kB | bytes per idle conn |")
print("|---|---|---|---|---|")
for r in csv.DictReader(open(sys.argv[2])):
    print(f"| {r['target']} | {r['idle_conns']} | {r['rss_before_kb']} | {r['rss_after_kb']} | {r['bytes_per_conn']} |")
PY
cat "$WORK/summary.md"
