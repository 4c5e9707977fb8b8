#!/usr/bin/env bash
# Prepares a container engine for the container-mode tests: installs Debian's podman and runc
# (and busybox-static, for the model image) when absent, writes /etc/containers/containers.conf
# only where none exists, and imports the toy model image from a root filesystem (no registry
# is needed). Prints `engine=ENGINE image=IMAGE` on stdout when ready; otherwise says why on
# stderr and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

# Tagged with a digest of the model script, so a changed script gets a new image.
image="localhost/simseries-toy-model:$(sha256sum examples/quickstart/model/toy-model.sh | cut -c1-12)"
say() { echo "container-engine: $*" >&2; }

if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1 || ! [ -x /bin/busybox ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        say "podman, runc and busybox-static are missing and cannot be installed here (needs root and apt-get)"
        exit 1
    fi
    say "installing podman, runc and busybox-static"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q podman runc busybox-static >/dev/null 2>&1; then
        apt-get update -q >/dev/null 2>&1 || true
        if ! apt-get install -y -q podman runc busybox-static >/dev/null 2>&1; then
            say "apt-get could not install podman, runc and busybox-static"
            exit 1
        fi
    fi
fi

# The default runtime (crun) refuses the hybrid cgroup setup of these machines, and podman's
# default ulimits exceed their hard limits.
conf=/etc/containers/containers.conf
if [ ! -e "$conf" ] && [ -w /etc/containers ]; then
    say "writing $conf (runtime runc, ulimits within the hard limits)"
    cat > "$conf" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "runc"
CONF
fi

if ! podman image exists "$image" 2>/dev/null; then
    say "importing $image (busybox-static and the quickstart's toy model)"
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    mkdir -p "$root/bin" "$root/model" "$root/mnt" "$root/tmp"
    cp /bin/busybox "$root/bin/busybox"
    for tool in sh sed head printf echo sleep touch cat env ls sort; do
        ln -s busybox "$root/bin/$tool"
    done
    cp examples/quickstart/model/toy-model.sh "$root/model/toy-model.sh"
    if ! tar -C "$root" -c . | podman import --quiet \
        --change 'ENTRYPOINT ["/bin/sh", "/model/toy-model.sh"]' \
        --change 'ENV PATH=/bin' - "$image" >/dev/null; then
        say "podman could not import the image"
        exit 1
    fi
fi

# The engine must run a container, not only answer.
if ! out=$(podman run --rm --entrypoint /bin/sh "$image" -c 'echo ok' 2>&1) || [ "$out" != ok ]; then
    say "podman cannot run a container here: $out"
    exit 1
fi
echo "engine=podman image=$image"
