//go:build node

package kubenode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/incumbent-io/incumbent/internal/testenv"
)

// The pod network: one bridge, one /24, the host side as its gateway.
const (
	Bridge    = "incbr0"
	podSubnet = "10.244.0.0/24"
	podRoutes = "10.244.0.0/16" // the pods' route to each other
	// HostIP is the host's address on the bridge: the only address besides
	// a pod's own that pods may reach, where the API server is forwarded
	// (port APIPort) and where tests serve what pods report to.
	HostIP = "10.244.0.1"
	// APIPort is the API server's port on HostIP, for pods.
	APIPort = 6443
)

// PauseImage is the sandbox image containerd is pinned to; Options.Images
// must include a tarball that provides it.
const PauseImage = "incumbent.test/pause:1"

// Options configures Start.
type Options struct {
	// Dir is the node's folder; anything a previous run left there is
	// cleaned up first, host changes included.
	Dir string
	// Images are image tarballs (OCI or docker archives) to import into
	// containerd before the kubelet starts.
	Images []string
	// Log receives progress lines.
	Log func(format string, args ...any)
}

// Node is a running single-node cluster.
type Node struct {
	opts    Options
	Name    string // the node's name: this host's name, which resolves to 127.0.0.1
	bins    string
	pki     *pki
	host    *hostState
	ports   map[string]int
	procs   []*proc // in start order
	forward net.Listener
	client  *kubernetes.Clientset
	restCfg *rest.Config
	sched   map[string]*proc // kube-scheduler processes by name

	stopOnce sync.Once
	stopErr  error
}

// Start builds (when missing) and starts etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, containerd and the kubelet, and
// returns once the node is Ready and the default service account exists.
// On error, everything started is stopped and undone.
func Start(ctx context.Context, o Options) (n *Node, err error) {
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("kubenode: the real-node tier runs a kubelet and needs root (sudo go test -tags node ./test/node/)")
	}
	if err := checkTools(); err != nil {
		// Install them, as the tests build the Kubernetes binaries.
		if ierr := runScript(ctx, "node-deps.sh", o.Log); ierr != nil {
			return nil, fmt.Errorf("%w; installing them failed: %v", err, ierr)
		}
		if err := checkTools(); err != nil {
			return nil, err
		}
	}
	// Without a record of ours, kubepods cgroups, /var/lib/kubelet or a pod
	// route belong to someone else: refuse, before touching anything.
	if _, err := os.Stat(statePath(o.Dir)); err != nil {
		if err := foreignKubernetes(); err != nil {
			return nil, err
		}
	}
	if err := cleanLeftovers(o.Dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	name, err := os.Hostname()
	if err != nil {
		return nil, err
	}
	if addrs, err := net.LookupHost(name); err != nil || len(addrs) == 0 || !net.ParseIP(addrs[0]).IsLoopback() {
		return nil, fmt.Errorf("kubenode: this host's name %q must resolve to a loopback address (the API server reaches the kubelet by it), got %v %v", name, addrs, err)
	}
	bins, err := nodeBinaries(ctx)
	if err != nil {
		return nil, err
	}
	n = &Node{opts: o, Name: name, bins: bins}
	defer func() {
		if err != nil {
			n.Stop()
			n = nil
		}
	}()
	if n.host, err = saveHost(o.Dir, Bridge); err != nil {
		return n, fmt.Errorf("kubenode: save the host's settings: %w", err)
	}
	if err := n.host.addForwardDrop(); err != nil {
		return n, fmt.Errorf("kubenode: %w", err)
	}
	ps, err := testenv.FreePorts(6)
	if err != nil {
		return n, err
	}
	n.ports = map[string]int{"etcd": ps[0], "peer": ps[1], "api": ps[2], "kcm": ps[3], "kubelet": ps[4], "healthz": ps[5]}
	if n.pki, err = newPKI(filepath.Join(o.Dir, "pki"), name, []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(HostIP), net.ParseIP("10.0.0.1")}); err != nil {
		return n, fmt.Errorf("kubenode: certificates: %w", err)
	}
	n.restCfg = &rest.Config{Host: n.APIServer(), BearerToken: n.pki.tokens["admin"],
		TLSClientConfig: rest.TLSClientConfig{CAData: n.pki.caPEM}, QPS: 100, Burst: 200}
	if n.client, err = kubernetes.NewForConfig(n.restCfg); err != nil {
		return n, err
	}
	for _, user := range []string{"admin", "system:kube-controller-manager", "system:kube-scheduler", "system:node:" + name} {
		if err := n.pki.kubeconfig(n.kubeconfigPath(user), n.APIServer(), user); err != nil {
			return n, err
		}
	}
	steps := []struct {
		what string
		fn   func(context.Context) error
	}{
		{"etcd", n.startEtcd},
		{"kube-apiserver", n.startAPIServer},
		{"the API server's forwarder for pods", n.startForwarder},
		{"kube-controller-manager", n.startControllerManager},
		{"kube-scheduler", func(ctx context.Context) error { _, err := n.StartScheduler(ctx, "kube-scheduler"); return err }},
		{"containerd", n.startContainerd},
		{"images", n.importImages},
		{"kubelet", n.startKubelet},
		{"node Ready", n.waitNodeReady},
		{"default service account", n.waitServiceAccount},
	}
	for _, s := range steps {
		t0 := time.Now()
		if err := s.fn(ctx); err != nil {
			return n, fmt.Errorf("kubenode: %s: %w", s.what, err)
		}
		o.Log("kubenode: %s ready in %v", s.what, time.Since(t0).Round(time.Millisecond))
	}
	// The kubelet has set its kernel tunables (overcommit, panic on oops):
	// put the host's back now rather than at teardown.
	if err := n.host.restoreSysctls(); err != nil {
		return n, fmt.Errorf("kubenode: %w", err)
	}
	return n, nil
}

// checkTools reports, in one error, what the host lacks.
func checkTools() error {
	var missing []string
	for _, p := range []string{"/usr/bin/containerd", "/usr/bin/containerd-shim-runc-v2", "/usr/bin/ctr", "/usr/sbin/runc",
		"/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback"} {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	for _, t := range []string{"iptables", "ip"} {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("kubenode: missing %s: hack/node-deps.sh installs them from Debian packages", strings.Join(missing, ", "))
	}
	return nil
}

// nodeBinaries returns the folder with the Kubernetes binaries and etcd,
// building what is missing (hack/nodebin.sh).
func nodeBinaries(ctx context.Context) (string, error) {
	var out bytes.Buffer
	if err := runScriptTo(ctx, "nodebin.sh", &out); err != nil {
		return "", err
	}
	return strings.TrimSpace(out.String()), nil
}

// runScript runs a script of hack/, its standard output logged.
func runScript(ctx context.Context, name string, log func(string, ...any)) error {
	var out bytes.Buffer
	err := runScriptTo(ctx, name, &out)
	if s := strings.TrimSpace(out.String()); s != "" {
		log("kubenode: %s: %s", name, s)
	}
	return err
}

func runScriptTo(ctx context.Context, name string, stdout *bytes.Buffer) error {
	_, self, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(self), "..", "..", "..", "hack", name)
	var errb bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Stdout, cmd.Stderr = stdout, &errb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kubenode: %s: %w\n%s", script, err, errb.String())
	}
	return nil
}

// APIServer is the API server's URL on loopback.
func (n *Node) APIServer() string { return "https://127.0.0.1:" + strconv.Itoa(n.ports["api"]) }

// Config returns an administrator's client configuration.
func (n *Node) Config() *rest.Config { return rest.CopyConfig(n.restCfg) }

// Client is an administrator's clientset.
func (n *Node) Client() *kubernetes.Clientset { return n.client }

// Kubeconfig is the path of an administrator's kubeconfig, for kubectl-like
// commands (incumbent status).
func (n *Node) Kubeconfig() string { return n.kubeconfigPath("admin") }

func (n *Node) kubeconfigPath(user string) string {
	return filepath.Join(n.opts.Dir, "pki", strings.ReplaceAll(user, ":", "-")+".kubeconfig")
}

func (n *Node) path(parts ...string) string {
	return filepath.Join(append([]string{n.opts.Dir}, parts...)...)
}

func (n *Node) start(name, bin string, args []string) (*proc, error) {
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + n.opts.Dir} // no iptables on the PATH: see real-node.md
	p, err := startProc(name, bin, args, env, n.path(name+".log"))
	if err != nil {
		return nil, err
	}
	n.procs = append(n.procs, p)
	return p, nil
}

func (n *Node) startEtcd(ctx context.Context) error {
	url := func(k string) string { return "http://127.0.0.1:" + strconv.Itoa(n.ports[k]) }
	p, err := n.start("etcd", filepath.Join(n.bins, "etcd"), []string{
		"--name=node", "--data-dir=" + n.path("etcd"),
		"--listen-client-urls=" + url("etcd"), "--advertise-client-urls=" + url("etcd"),
		"--listen-peer-urls=" + url("peer"), "--initial-advertise-peer-urls=" + url("peer"),
		"--initial-cluster=node=" + url("peer"), "--unsafe-no-fsync=true",
	})
	if err != nil {
		return err
	}
	return waitFor(ctx, p, 60*time.Second, func() error {
		return exec.CommandContext(ctx, "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/"+strconv.Itoa(n.ports["etcd"])).Run()
	})
}

func (n *Node) startAPIServer(ctx context.Context) error {
	pk := n.pki.path
	p, err := n.start("kube-apiserver", filepath.Join(n.bins, "kube-apiserver"), []string{
		"--etcd-servers=http://127.0.0.1:" + strconv.Itoa(n.ports["etcd"]),
		"--secure-port=" + strconv.Itoa(n.ports["api"]),
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none",
		"--tls-cert-file=" + pk("apiserver.crt"), "--tls-private-key-file=" + pk("apiserver.key"),
		"--client-ca-file=" + pk("ca.crt"),
		"--token-auth-file=" + pk("tokens.csv"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + pk("sa.key"), "--service-account-signing-key-file=" + pk("sa.key"),
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--kubelet-client-certificate=" + pk("kubelet-client.crt"), "--kubelet-client-key=" + pk("kubelet-client.key"),
		"--kubelet-preferred-address-types=Hostname",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--allow-privileged=true",
		"--shutdown-watch-termination-grace-period=1s",
		"--cert-dir=" + n.path("apiserver-certs"),
	})
	if err != nil {
		return err
	}
	return waitFor(ctx, p, 90*time.Second, func() error {
		body, err := n.client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			return fmt.Errorf("/readyz: %w: %s", err, body)
		}
		return nil
	})
}

// startForwarder serves the API server on HostIP:APIPort for pods. The
// bridge (and so HostIP) exists only once the first pod is up: the listener
// binds with IP_FREEBIND.
func (n *Node) startForwarder(context.Context) error {
	ln, err := listenFreebind(net.JoinHostPort(HostIP, strconv.Itoa(APIPort)))
	if err != nil {
		return err
	}
	n.forward = ln
	go forward(ln, "127.0.0.1:"+strconv.Itoa(n.ports["api"]))
	return nil
}

func (n *Node) startControllerManager(ctx context.Context) error {
	pk := n.pki.path
	kc := n.kubeconfigPath("system:kube-controller-manager")
	p, err := n.start("kube-controller-manager", filepath.Join(n.bins, "kube-controller-manager"), []string{
		"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
		"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(n.ports["kcm"]),
		"--use-service-account-credentials",
		"--service-account-private-key-file=" + pk("sa.key"), "--root-ca-file=" + pk("ca.crt"),
		"--leader-elect=true", "--allocate-node-cidrs=false",
		"--cert-dir=" + n.path("kcm-certs"),
	})
	if err != nil {
		return err
	}
	return waitFor(ctx, p, 60*time.Second, func() error {
		_, err := n.client.CoordinationV1().Leases("kube-system").Get(ctx, "kube-controller-manager", metav1.GetOptions{})
		return err
	})
}

// StartScheduler starts a kube-scheduler with client-go leader election on
// the Lease kube-system/kube-scheduler, logging to name.log: the node
// starts one named kube-scheduler, and a test may add replicas.
func (n *Node) StartScheduler(ctx context.Context, name string) (*os.Process, error) {
	if n.sched == nil {
		n.sched = map[string]*proc{}
	}
	if _, ok := n.sched[name]; ok {
		return nil, fmt.Errorf("kubenode: a scheduler named %s already runs", name)
	}
	ps, err := testenv.FreePorts(1)
	if err != nil {
		return nil, err
	}
	kc := n.kubeconfigPath("system:kube-scheduler")
	p, err := n.start(name, filepath.Join(n.bins, "kube-scheduler"), []string{
		"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
		"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(ps[0]),
		"--leader-elect=true",
		"--cert-dir=" + n.path(name+"-certs"),
	})
	if err != nil {
		return nil, err
	}
	n.sched[name] = p
	return os.FindProcess(p.pid)
}

// KillScheduler sends SIGKILL to the scheduler named name and waits for it
// to exit.
func (n *Node) KillScheduler(name string) error {
	p, ok := n.sched[name]
	if !ok {
		return fmt.Errorf("kubenode: no scheduler named %s", name)
	}
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	<-p.exited
	return nil
}

// Logs returns the path of a node process's log (etcd, kube-apiserver,
// kubelet, containerd, ...).
func (n *Node) Logs(name string) string { return n.path(name + ".log") }

func (n *Node) waitNodeReady(ctx context.Context) error {
	kubelet := n.procs[len(n.procs)-1]
	return waitFor(ctx, kubelet, 120*time.Second, func() error {
		node, err := n.client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				if c.Status != corev1.ConditionTrue {
					return fmt.Errorf("node %s not Ready: %s: %s", n.Name, c.Reason, c.Message)
				}
				for _, t := range node.Spec.Taints {
					if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
						return fmt.Errorf("node %s still tainted %s", n.Name, t.Key)
					}
				}
				return nil
			}
		}
		return fmt.Errorf("node %s has no Ready condition yet", n.Name)
	})
}

func (n *Node) waitServiceAccount(ctx context.Context) error {
	return waitFor(ctx, n.procs[0], 60*time.Second, func() error {
		_, err := n.client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err
	})
}

// waitFor calls check every 100ms until it succeeds, p exits, or d passes.
func waitFor(ctx context.Context, p *proc, d time.Duration, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return nil
		}
		if perr := p.running(); perr != nil {
			return perr
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready within %v; last check: %w%s", d, err, logTail(p.log, 20))
		case <-tick.C:
		}
	}
}

// Stop deletes every pod, stops the kubelet, containerd and its shims and
// the control plane, and undoes every change to the host; it returns an
// error naming anything still left there (a process, a mount, a cgroup,
// the bridge, the iptables rule, a folder, a setting). The node's folder
// stays, with its logs, until the next Start.
func (n *Node) Stop() error {
	if n == nil {
		return nil
	}
	// A second caller (the test's end racing a signal) waits for the first.
	n.stopOnce.Do(func() { n.stopErr = n.stop() })
	return n.stopErr
}

func (n *Node) stop() error {
	var errs []error
	if n.client != nil && len(n.procs) > 0 {
		n.deletePods()
	}
	if n.forward != nil {
		n.forward.Close()
	}
	for i := len(n.procs) - 1; i >= 0; i-- {
		n.procs[i].stop(20 * time.Second)
	}
	killProcs(n.opts.Dir) // the shims and what they ran
	if err := unmountUnder(n.opts.Dir); err != nil {
		errs = append(errs, err)
	}
	if n.host != nil {
		if err := n.host.undo(); err != nil {
			errs = append(errs, err)
		}
		if left := n.host.residue(n.opts.Dir); len(left) > 0 {
			// The state file stays, for the next run to try again.
			errs = append(errs, fmt.Errorf("left on the host: %s", strings.Join(left, "; ")))
		} else if err := os.Remove(statePath(n.opts.Dir)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kubenode: teardown: %w", err)
	}
	return nil
}

// deletePods deletes every pod at once and gives the kubelet a bounded time
// to stop their containers and tear their networks down.
func (n *Node) deletePods() {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	nss, err := n.client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	zero := int64(0)
	for _, ns := range nss.Items {
		_ = n.client.CoreV1().Pods(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
	}
	for ctx.Err() == nil {
		out, err := n.Ctr(ctx, "tasks", "ls", "-q")
		if err == nil && strings.TrimSpace(out) == "" {
			return
		}
		time.Sleep(200 * time.Millisecond) // polling the runtime: no event to wait on
	}
}
