#!/usr/bin/env bash
# nodebin.sh builds what the real-node tier (test/node) adds to the test
# servers of testbin.sh: kubelet, kube-controller-manager and kube-scheduler
# of the same Kubernetes version, into the same per-user cache, and prints
# that folder. Like testbin.sh it builds from the Go module proxy only and
# returns at once when the binaries are already there.
set -euo pipefail

root="$(cd "$(dirname "$0")" && pwd)"
dir="$(bash "$root/testbin.sh")"
KUBE_VERSION=v1.37.2

exec 9>"$dir/.nodelock"
flock 9

ld="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION"
for name in kube-scheduler kube-controller-manager kubelet; do
	if [[ ! -x "$dir/$name" ]]; then
		echo "nodebin: building $name $KUBE_VERSION into $dir" >&2
		(cd "$root/tools/kube" && go build -trimpath -ldflags "$ld" -o "$dir/$name.tmp" "k8s.io/kubernetes/cmd/$name")
		mv "$dir/$name.tmp" "$dir/$name"
	fi
done
echo "$dir"
