#!/usr/bin/env bash
# node-deps.sh installs what the real-node tier (test/node) takes from
# Debian's packages: containerd, runc, the CNI plugins, iptables and
# iproute2. It needs root, and does nothing when they are all there.
set -euo pipefail

need=()
[[ -x /usr/bin/containerd && -x /usr/bin/containerd-shim-runc-v2 && -x /usr/bin/ctr ]] || need+=(containerd)
[[ -x /usr/sbin/runc ]] || need+=(runc)
[[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback ]] || need+=(containernetworking-plugins)
command -v iptables >/dev/null || need+=(iptables)
command -v ip >/dev/null || need+=(iproute2)
if ((${#need[@]} == 0)); then
	exit 0
fi
if ((EUID != 0)); then
	echo "node-deps: installing ${need[*]} needs root" >&2
	exit 1
fi
echo "node-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends "${need[@]}" >&2 ||
	{ apt-get update >&2 && apt-get install -y --no-install-recommends "${need[@]}" >&2; }
