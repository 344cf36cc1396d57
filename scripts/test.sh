#!/usr/bin/env bash
# The whole test suite: installs what the tests need when it is missing, then runs format and
# lint gates and every test in the workspace. Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

# Debian packages the tests need, as "binary:package" pairs.
need_apt=()
# (gtlsclient: ngtcp2's example HTTP/3 client, for dme/tests/h3_independent.rs.)
for pair in "protoc:protobuf-compiler" "etcd:etcd-server" "influxd:influxdb" "dig:dnsutils" "ip:iproute2" "gtlsclient:ngtcp2-client"; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need_apt+=("${pair#*:}")
done
# PostgreSQL for the MC store's suite: Debian keeps initdb and pg_ctl off PATH, in
# /usr/lib/postgresql/<version>/bin.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need_apt+=(postgresql)
if ((${#need_apt[@]})); then
  log "installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}"
fi

# Python grpcio for the independent-client test (dme/tests/python_client.rs), and aioquic for the
# independent HTTP/3 client (dme/tests/h3_independent.rs).
if ! .venv/bin/python -c 'import grpc, grpc_tools, aioquic' >/dev/null 2>&1; then
  log "creating .venv with grpcio and aioquic"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check grpcio==1.85.3 grpcio-tools==1.85.1 aioquic==1.7.2
fi
# schemathesis for the CAMARA contract test (tests/camara_contract.rs runs tests/camara/contract.py,
# whose configuration keys are this version's).
if [[ "$(.venv/bin/python -c 'import schemathesis; print(schemathesis.__version__)' 2>/dev/null)" != "4.32.5" ]]; then
  log "installing schemathesis into .venv"
  [[ -x .venv/bin/python ]] || python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check schemathesis==4.32.5
fi
export EDGEPLANE_PYTHON="$PWD/.venv/bin/python"

# A real etcd for the store conformance suite (and the controller's etcd tests).
EDGEPLANE_ETCD_ENDPOINTS=$(control/store/scripts/etcd-test-server.sh start)
export EDGEPLANE_ETCD_ENDPOINTS
trap 'control/store/scripts/etcd-test-server.sh stop >/dev/null 2>&1 || true; control/shepherd/scripts/influx-test-server.sh stop >/dev/null 2>&1 || true; control/mc/scripts/pg-test-server.sh stop >/dev/null 2>&1 || true' EXIT
log "etcd at $EDGEPLANE_ETCD_ENDPOINTS"

# A real InfluxDB 1.x for Shepherd's sink and collection tests.
EDGEPLANE_INFLUX_URL=$(control/shepherd/scripts/influx-test-server.sh start)
export EDGEPLANE_INFLUX_URL
log "influxdb at $EDGEPLANE_INFLUX_URL"

# A throwaway PostgreSQL cluster for the MC store's PostgreSQL conformance suite
# (control/mc/tests/store_postgres.rs fails without it).
EDGEPLANE_PG_URL=$(control/mc/scripts/pg-test-server.sh start)
export EDGEPLANE_PG_URL
log "postgresql at $EDGEPLANE_PG_URL"

FEATURES=(--features edgeplane/etcd,edge-store/etcd,controller/etcd,loadtests/etcd)

# The declared MSRV is the toolchain CI builds and tests with (rust-toolchain.toml): the one
# version this machine kind has, so the one that is checked.
msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
channel=$(sed -n 's/^channel = "\([0-9]*\.[0-9]*\).*"/\1/p' rust-toolchain.toml)
if [[ "$msrv" != "$channel" ]]; then
  echo "rust-version ($msrv) in Cargo.toml is not the toolchain tests run on ($channel)" >&2
  exit 1
fi

# Crates depend on each other only in the documented direction (README "Crates"), and these
# crates' top-level modules import each other without cycles.
log "layering"
python3 scripts/check_layers.py dataplane dme dme/api geodata control/api control/controller control/edgectl control/crm control/dns control/shepherd control/mc control/auth tls quiclb

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked "${FEATURES[@]}" -- -D warnings

log "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "${FEATURES[@]}"
else
  cargo test --workspace --locked --no-fail-fast "${FEATURES[@]}"
fi

# The README's first command, as a newcomer runs it, must start a region that answers.
log "README main command"
python3 scripts/check_readme_main.py
