#!/usr/bin/env bash
# The listing bench (benches/listing.rs) against Garage, an S3 server whose listings page
# through a sorted index as S3's do (moto sorts the whole bucket for every page and answers
# one request at a time, so at 200,000 objects its own CPU, not the round trip, sets both
# sides' time). Builds Garage from crates.io once (into target/bench-tools), starts a
# one-node cluster on 127.0.0.1 in a temporary folder, makes a key and a bucket, runs the
# bench through its 20 ms proxy, and stops the server.
#   benches/listing.sh [OUTPUTS]        (default 200000)
#   SIMSERIES_BENCH_LATENCY_MS=100 benches/listing.sh   (another round trip than 20 ms)
set -euo pipefail
cd "$(dirname "$0")/.."
outputs="${1:-200000}"
garage_version="2.5.0"
tools="$PWD/target/bench-tools"
garage="$tools/bin/garage"
if ! "$garage" --version 2>/dev/null | grep -q "$garage_version"; then
    echo "building garage $garage_version into $tools (once; several minutes)" >&2
    cargo install garage --version "$garage_version" --locked --root "$tools" >&2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/simseries-garage-XXXXXX")
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
s3_port=$(free_port)
rpc_port=$(free_port)
cat >"$work/garage.toml" <<TOML
metadata_dir = "$work/meta"
data_dir = "$work/data"
db_engine = "lmdb"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc_port"
rpc_public_addr = "127.0.0.1:$rpc_port"
rpc_secret = "$(python3 -c 'import secrets; print(secrets.token_hex(32))')"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3_port"
root_domain = ".s3.garage.localhost"
TOML
g() { "$garage" -c "$work/garage.toml" "$@"; }
g server >"$work/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
node=""
for _ in $(seq 1 100); do
    if node=$(g node id -q 2>/dev/null); then break; fi
    sleep 0.2
done
[ -n "$node" ] || { echo "garage did not start; see $work/server.log" >&2; cat "$work/server.log" >&2; exit 1; }
# The node's ID is known before its RPC port listens: the first call waits for the server.
for _ in $(seq 1 100); do
    if g layout assign -z local -c 10G "${node%%@*}" >/dev/null 2>&1; then break; fi
    sleep 0.2
done
g layout apply --version 1 >/dev/null
key=$(g key create bench)
key_id=$(sed -n 's/^Key ID: *//p' <<<"$key" | head -1)
secret=$(sed -n 's/^Secret key: *//p' <<<"$key" | head -1)
g bucket create listing >/dev/null
g bucket allow --read --write --owner listing --key bench >/dev/null

SIMSERIES_BENCH_S3_ENDPOINT="http://127.0.0.1:$s3_port" SIMSERIES_BENCH_S3_BUCKET=listing \
    AWS_ACCESS_KEY_ID="$key_id" AWS_SECRET_ACCESS_KEY="$secret" AWS_REGION=garage \
    cargo bench --bench listing -- "$outputs"
