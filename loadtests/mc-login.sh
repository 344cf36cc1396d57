#!/usr/bin/env bash
# The cost of an MC login (Argon2id verification of the password, then a signed token), seen
# by a client: sequential logins, then concurrent ones, against `edgeplane mc` on its embedded
# store (plaintext on 127.0.0.1), with an authenticated call as the yardstick of everything
# but the hash. curl is the client (its time_total, not its process start).
#
# Usage: loadtests/mc-login.sh [SEQUENTIAL=60] [CLIENTS=8] [PER_CLIENT=10]
# Needs target/release/edgeplane (cargo build --release -p edgeplane), curl, jq.
set -euo pipefail
cd "$(dirname "$0")/.."
seq_n=${1:-60}
clients=${2:-8}
per=${3:-10}
bin=target/release/edgeplane
[[ -x $bin ]] || { echo "build $bin first: cargo build --release -p edgeplane" >&2; exit 1; }
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
$bin mc --listen 127.0.0.1:0 --data-dir "$dir/data" --admin-password-file "$dir/pw" \
  >"$dir/out" 2>"$dir/err" &
pid=$!
for _ in $(seq 100); do [[ -s $dir/out ]] && break; sleep 0.1; done
mc=$(awk '{print $4}' "$dir/out")
[[ -n $mc ]] || { echo "the MC did not start:" >&2; cat "$dir/err" >&2; exit 1; }
body=$(jq -nc --arg p "$(cat "$dir/pw")" '{username: "admin", password: $p}')

stats() { # label, then times in seconds on stdin
  sort -n | awk -v l="$1" '{a[NR]=$1} END {
    printf "%-34s n=%-4d p50 %6.1f ms  p90 %6.1f ms  max %6.1f ms\n", l, NR,
      a[int((NR+1)*0.5)]*1000, a[int((NR+1)*0.9)]*1000, a[NR]*1000 }'
}
login() { curl -s -o /dev/null --max-time 10 -w '%{time_total}\n' "$mc/api/v1/login" -d "$body"; }

for _ in $(seq "$seq_n"); do login; done | stats "login, sequential"
token=$(curl -s --max-time 10 "$mc/api/v1/login" -d "$body" | jq -r .token)
for _ in $(seq "$seq_n"); do
  curl -s -o /dev/null --max-time 10 -w '%{time_total}\n' \
    -H "Authorization: Bearer $token" "$mc/api/v1/auth/user/current" -d '{}'
done | stats "user/current (token, no hash)"
start=$(date +%s.%N)
for _ in $(seq "$clients"); do
  (for _ in $(seq "$per"); do login; done) &
done | stats "login, $clients clients x $per"
end=$(date +%s.%N)
awk -v n=$((clients * per)) -v s="$start" -v e="$end" \
  'BEGIN { printf "concurrent logins: %.0f per second (%d in %.2f s)\n", n/(e-s), n, e-s }'
echo "cores: $(nproc), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
