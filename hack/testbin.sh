#!/usr/bin/env bash
# testbin.sh builds the real kube-apiserver and etcd that the tests run
# against, into a per-user cache keyed by version, and prints that folder.
# A second call finds them there and returns at once. Nothing is downloaded
# but Go modules: both servers build from the Go module proxy.
set -euo pipefail

KUBE_VERSION=v1.37.2
ETCD_VERSION=v3.6.16
root="$(cd "$(dirname "$0")" && pwd)"
cache="${INCUMBENT_TESTBIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/incumbent/testbin}"
dir="$cache/kube-$KUBE_VERSION-etcd-$ETCD_VERSION"
mkdir -p "$dir"

# Test packages run in parallel and may all ask at once: build once.
exec 9>"$dir/.lock"
flock 9

if [[ ! -x "$dir/kube-apiserver" ]]; then
	echo "testbin: building kube-apiserver $KUBE_VERSION into $dir (cold: about 5-8 minutes)" >&2
	ld="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION"
	(cd "$root/tools/kube" && go build -trimpath -ldflags "$ld" -o "$dir/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver)
	mv "$dir/kube-apiserver.tmp" "$dir/kube-apiserver"
fi
if [[ ! -x "$dir/etcd" ]]; then
	echo "testbin: building etcd $ETCD_VERSION into $dir (cold: about 2-3 minutes)" >&2
	(cd "$root/tools/etcd" && go build -trimpath -ldflags "-s -w" -o "$dir/etcd.tmp" .)
	mv "$dir/etcd.tmp" "$dir/etcd"
fi
echo "$dir"
