//go:build node

package kubenode

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// The CNI network: a bridge whose host side is the pods' gateway (so that
// the kubelet's probes reach them), no masquerading, addresses from
// host-local kept in the node's folder.
const cniConfig = `{
  "cniVersion": "1.0.0",
  "name": "incumbent-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "dataDir": %q,
        "ranges": [[{"subnet": %q, "gateway": %q}]],
        "routes": [{"dst": %q}]
      }
    },
    {"type": "loopback"}
  ]
}
`

// containerd 1.6's configuration: its own folders and socket; see
// real-node.md for why each CRI setting is there.
const containerdConfig = `version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[6]q
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[7]q
`

func (n *Node) socket() string { return n.path("containerd", "containerd.sock") }

func (n *Node) startContainerd(ctx context.Context) error {
	cni := n.path("cni", "net.d")
	if err := os.MkdirAll(cni, 0o755); err != nil {
		return err
	}
	conf := fmt.Sprintf(cniConfig, Bridge, n.path("cni", "ipam"), podSubnet, HostIP, podRoutes)
	if err := os.WriteFile(filepath.Join(cni, "10-incumbent.conflist"), []byte(conf), 0o644); err != nil {
		return err
	}
	cfg := fmt.Sprintf(containerdConfig, n.path("containerd", "root"), n.path("containerd", "state"),
		n.socket(), n.path("containerd", "ttrpc.sock"), n.path("containerd", "opt"), PauseImage, cni)
	if err := os.MkdirAll(n.path("containerd"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(n.path("containerd", "config.toml"), []byte(cfg), 0o644); err != nil {
		return err
	}
	p, err := n.start("containerd", "/usr/bin/containerd", []string{"--config", n.path("containerd", "config.toml")})
	if err != nil {
		return err
	}
	return waitFor(ctx, p, 30*time.Second, func() error {
		_, err := n.Ctr(ctx, "version")
		return err
	})
}

// Ctr runs ctr against the node's containerd, in the k8s.io namespace.
func (n *Node) Ctr(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "/usr/bin/ctr", append([]string{"--address", n.socket(), "-n", "k8s.io"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ctr %v: %w: %s", args, err, out)
	}
	return string(out), nil
}

// ImportImage loads an image tarball into the node's containerd.
func (n *Node) ImportImage(ctx context.Context, tarball string) error {
	_, err := n.Ctr(ctx, "images", "import", "--all-platforms", "--no-unpack=false", tarball)
	return err
}

func (n *Node) importImages(ctx context.Context) error {
	for _, img := range n.opts.Images {
		if err := n.ImportImage(ctx, img); err != nil {
			return err
		}
	}
	return nil
}

// The kubelet's configuration; see real-node.md for why each setting is
// there. Images cannot be pulled again, so they are never collected.
const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: %d
healthzBindAddress: 127.0.0.1
healthzPort: %d
readOnlyPort: 0
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://%s
failSwapOn: false
podLogsDir: %q
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %q}
authorization: {mode: Webhook}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {"memory.available": "100Mi", "nodefs.available": "1%%", "imagefs.available": "1%%", "nodefs.inodesFree": "1%%"}
serializeImagePulls: false
clusterDomain: cluster.local
resolvConf: ""
`

func (n *Node) startKubelet(ctx context.Context) error {
	cfg := fmt.Sprintf(kubeletConfig, n.ports["kubelet"], n.ports["healthz"], n.socket(), n.path("pod-logs"), n.pki.path("ca.crt"))
	if err := os.WriteFile(n.path("kubelet.yaml"), []byte(cfg), 0o644); err != nil {
		return err
	}
	_, err := n.start("kubelet", filepath.Join(n.bins, "kubelet"), []string{
		"--config=" + n.path("kubelet.yaml"),
		"--kubeconfig=" + n.kubeconfigPath("system:node:"+n.Name),
		"--root-dir=" + n.path("kubelet"),
		"--cert-dir=" + n.path("kubelet", "pki"),
		"--hostname-override=" + n.Name,
		"--v=2", // SyncLoop DELETE, Killing container: when the kubelet reacted
	})
	return err
}
