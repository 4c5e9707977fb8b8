#!/usr/bin/env bash
# Builds the controller image's runtime stage (deploy/Dockerfile) with podman, where no registry
# is reachable: the base is made here from the host's files (the libraries the binary links,
# CA certificates, a passwd with the nonroot user 65532, as distroless' cc image has), and the
# binary is the one given (by default the release build). Prints the image's name on stdout; a
# second run with the same binary and Dockerfile builds nothing.
#   scripts/controller-image.sh [BINARY]
# tests/in_cluster.rs runs the image against the test cluster's API server as a pod would.
set -euo pipefail
cd "$(dirname "$0")/.."
binary="${1:-target/release/simseries}"
say() { echo "controller-image: $*" >&2; }
if [ ! -x "$binary" ]; then
    say "no binary at $binary (cargo build --release --bin simseries)"
    exit 1
fi
key=$(cat "$binary" deploy/Dockerfile scripts/controller-image.sh | sha256sum | cut -c1-12)
image="localhost/simseries:test-$key"
if podman image exists "$image"; then
    echo "$image"
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The runtime base: only what the binary needs to start and to speak TLS.
base="$work/base"
mkdir -p "$base/etc/ssl/certs" "$base/tmp" "$base/home/nonroot"
chmod 1777 "$base/tmp"
for lib in $(ldd "$binary" | grep -o '/[^ ]*'); do
    mkdir -p "$base$(dirname "$lib")"
    cp -L "$lib" "$base$lib"
done
cp -L /etc/ssl/certs/ca-certificates.crt "$base/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$base/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$base/etc/group"
tar -C "$base" -c . | podman import --quiet - "localhost/simseries-runtime-base:$key" >/dev/null

# The binary stage: an image holding the binary where the build stage leaves it.
bin="$work/binary"
mkdir -p "$bin/src/target/release"
cp "$binary" "$bin/src/target/release/simseries"
tar -C "$bin" -c . | podman import --quiet - "localhost/simseries-binary:$key" >/dev/null

say "building $image from deploy/Dockerfile's runtime stage"
podman build --quiet -f deploy/Dockerfile \
    --build-arg "RUNTIME_IMAGE=localhost/simseries-runtime-base:$key" \
    --build-arg "BINARY_FROM=localhost/simseries-binary:$key" \
    -t "$image" "$work" >/dev/null
podman rmi --force "localhost/simseries-binary:$key" "localhost/simseries-runtime-base:$key" >/dev/null 2>&1 || true
# Each test build makes an image of hundreds of MB: keep only this one.
for old in $(podman images --format '{{.Repository}}:{{.Tag}}' | grep '^localhost/simseries:test-' | grep -v "^$image\$"); do
    podman rmi --force "$old" >/dev/null 2>&1 || true
done
echo "$image"
