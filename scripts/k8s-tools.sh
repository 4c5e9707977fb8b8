#!/usr/bin/env bash
# Builds the real Kubernetes tools the tests run against, from the Go module proxy, into a cache
# under target/k8s-tools/ keyed by the tools modules (their go.mod and go.sum pin every version;
# nothing else does) and the Go version:
#   kube-apiserver, kube-controller-manager, kubectl
#                             tools/k8s     (k8s.io/kubernetes and its staging modules)
#   etcd                      tools/etcd    (go.etcd.io/etcd/server/v3, apart from the above)
#   kstatus                   tools/kstatus (sigs.k8s.io/cli-utils' kstatus, as Flux computes it)
#   helm                      tools/helm    (helm.sh/helm/v4, for the chart's tests)
# Prints the folder holding the six binaries on stdout; a second run with the same modules
# builds nothing. A cold build takes about 12 minutes and 2.3 GiB (the linker) on 2 cores (see README "Tests").
#   scripts/k8s-tools.sh            # build if needed, print the folder
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "k8s-tools: $*" >&2; }
# Go's own install folder, for a shell whose PATH lacks it.
export PATH="$PATH:/usr/local/go/bin"
if ! command -v go >/dev/null 2>&1; then
    say "go is missing: the tests' control plane is built with Go (1.26 or later)"
    exit 1
fi

# The module versions are read from the tools' go.mod files, the one place that pins them.
module_version() { (cd "tools/$1" && go list -m -f '{{.Version}}' "$2"); }
kubernetes=$(module_version k8s k8s.io/kubernetes)
etcd=$(module_version etcd go.etcd.io/etcd/server/v3)
helm=$(module_version helm helm.sh/helm/v4)
key=$(cat scripts/k8s-tools.sh tools/*/go.mod tools/*/go.sum tools/kstatus/*.go <(go version) | sha256sum | cut -c1-12)
out="$PWD/target/k8s-tools/kubernetes-$kubernetes-etcd-$etcd-helm-$helm-$key"
if [ -x "$out/kube-apiserver" ] && [ -x "$out/kube-controller-manager" ] && [ -x "$out/kubectl" ] && [ -x "$out/etcd" ] && [ -x "$out/kstatus" ] && [ -x "$out/helm" ]; then
    echo "$out"
    exit 0
fi

# kubernetes' version as its own release build stamps it (kubectl version, /version).
minor=${kubernetes#v*.}
minor=${minor%%.*}
major=${kubernetes#v}
major=${major%%.*}
stamp=""
for package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    stamp+=" -X $package.gitVersion=$kubernetes -X $package.gitMajor=$major -X $package.gitMinor=$minor"
done

# -mod=readonly: the committed go.sum must already hold every module; a build never edits it.
export CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"
building="$out.partial"
rm -rf "$building"
mkdir -p "$building"
start=$SECONDS
say "building kube-apiserver, kube-controller-manager and kubectl $kubernetes (a cold build takes minutes)"
(cd tools/k8s && go build -trimpath -ldflags "-s -w$stamp" -o "$building/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kubectl)
say "building etcd $etcd"
(cd tools/etcd && go build -trimpath -ldflags "-s -w" -o "$building/etcd" go.etcd.io/etcd/server/v3)
say "building kstatus"
(cd tools/kstatus && go build -trimpath -ldflags "-s -w" -o "$building/kstatus" .)
say "building helm $helm"
(cd tools/helm && go build -trimpath -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$helm" \
    -o "$building/helm" helm.sh/helm/v4/cmd/helm)
# Whole or not at all: a build stopped half-way never looks finished.
rm -rf "$out"
mv "$building" "$out"
# Earlier builds (other versions) are 200 MB each: keep only this one.
find "$PWD/target/k8s-tools" -mindepth 1 -maxdepth 1 ! -path "$out" -exec rm -rf {} +
say "built in $((SECONDS - start)) s into $out"
echo "$out"
