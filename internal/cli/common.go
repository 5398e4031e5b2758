package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/incumbent-io/incumbent/store/etcd"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// common holds the flags every command that talks to a store shares, and
// what is resolved from them.
type common struct {
	env *Env
	// name is the command, for messages ("status").
	name string

	// lease is the lease (--lease), or the first of several; leases are
	// all of them, in the order given. Only run holds several
	// (severalLeases); the other commands refuse them.
	lease         string
	leases        []string
	severalLeases bool

	namespace  string
	kubeconfig string
	backend    string
	fileDir    string
	etcd       etcd.Config
	etcdPrefix string
	logFormat  string
	logLevel   string

	kubeContext   string // --context
	leaseOptional bool   // status without --lease lists every Lease
	// podUID is the candidate's own pod's UID, which the kube store
	// records on the Lease for the API server's fence (run only).
	podUID string

	// resolved
	rest   *rest.Config
	kubeNS string // the kubeconfig context's namespace, when a kubeconfig is used
	be     backend
	logger *slog.Logger
}

func (c *common) addFlags(fs *pflag.FlagSet) {
	usage := "name of the lease (the election); required"
	if c.severalLeases {
		usage = "name of the lease (the election), or several, comma-separated or with the flag repeated: one candidate per lease, in one process; required"
	}
	fs.Var(leasesValue{lease: &c.lease, leases: &c.leases, several: c.severalLeases}, "lease", usage)
	fs.StringVarP(&c.namespace, "namespace", "n", "", "namespace of the lease (default: POD_NAMESPACE, then the service-account namespace file, then the kubeconfig context)")
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig file (default: KUBECONFIG, then in-cluster config, then ~/.kube/config)")
	fs.StringVar(&c.kubeContext, "context", "", "kubeconfig context to use (default: the kubeconfig's current context)")
	fs.StringVar(&c.backend, "backend", "kubernetes", "where the lease lives: "+strings.Join(backendNames(), ", ")+" (file: processes of one machine, no server)")
	fs.StringVar(&c.fileDir, "file-dir", "", "--backend file: the folder of the lease files (default: $XDG_STATE_HOME/incumbent, else ~/.local/state/incumbent)")
	fs.StringSliceVar(&c.etcd.Endpoints, "etcd-endpoints", nil, "--backend etcd: comma-separated client URLs, e.g. https://10.0.0.1:2379")
	fs.StringVar(&c.etcdPrefix, "etcd-prefix", etcd.DefaultPrefix, "--backend etcd: key prefix; the lease is the key PREFIX/LEASE")
	fs.StringVar(&c.etcd.CAFile, "etcd-ca", "", "--backend etcd: CA certificate file that verifies the servers")
	fs.StringVar(&c.etcd.CertFile, "etcd-cert", "", "--backend etcd: client certificate file")
	fs.StringVar(&c.etcd.KeyFile, "etcd-key", "", "--backend etcd: client key file")
	fs.StringVar(&c.etcd.Username, "etcd-username", "", "--backend etcd: user name, when etcd authentication is on")
	fs.StringVar(&c.etcd.Password, "etcd-password", "", "--backend etcd: password (prefer INCUMBENT_ETCD_PASSWORD)")
	fs.StringVar(&c.logFormat, "log-format", "", "log format, json or text (default: json inside a pod, i.e. when KUBERNETES_SERVICE_HOST is set, else text)")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
}

// setup validates the shared flags, builds the logger and resolves the
// backend's connection. It makes no network call.
func (c *common) setup() error {
	if err := c.setupLocal(); err != nil {
		return err
	}
	return c.connect()
}

// setupLocal builds the logger first (so that the errors that follow are
// reported in its format), then validates the shared flags.
func (c *common) setupLocal() error {
	log, err := c.env.newLogger(c.logFormat, c.logLevel)
	if err != nil {
		return usage(err)
	}
	c.logger = log
	if c.lease == "" && !c.leaseOptional {
		return usagef("--lease is required (or INCUMBENT_LEASE)")
	}
	if !c.severalLeases {
		if err := oneLease(c.name, c.leases); err != nil {
			return err
		}
	}
	be, err := findBackend(c.backend)
	if err != nil {
		return usage(err)
	}
	c.be = be
	return nil
}

// connect resolves what the backend needs to reach its store.
func (c *common) connect() error {
	if c.be.kubernetes {
		return c.resolveKube()
	}
	return nil
}

// kubeOnly rejects a Kubernetes-only feature under another backend.
func (c *common) kubeOnly(feature string) error {
	if c.be.kubernetes {
		return nil
	}
	return usagef("%s works only with --backend kubernetes (the lease is in %q)", feature, c.be.name)
}

// resolveKube finds the API server's client config and the namespace.
func (c *common) resolveKube() error {
	getenv := c.env.Getenv
	var loading *clientcmd.ClientConfigLoadingRules
	switch {
	case c.kubeconfig != "":
		loading = &clientcmd.ClientConfigLoadingRules{ExplicitPath: c.kubeconfig}
	case getenv("KUBECONFIG") != "":
		loading = &clientcmd.ClientConfigLoadingRules{Precedence: filepath.SplitList(getenv("KUBECONFIG"))}
	case getenv("KUBERNETES_SERVICE_HOST") != "" && c.kubeContext == "":
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return usagef("in-cluster Kubernetes config: %v", err)
		}
		c.rest = cfg
	default:
		home, _ := os.UserHomeDir()
		path := filepath.Join(home, ".kube", "config")
		if _, err := os.Stat(path); home == "" || err != nil {
			return usagef("no Kubernetes credentials: give --kubeconfig (or KUBECONFIG), or run inside a cluster")
		}
		loading = &clientcmd.ClientConfigLoadingRules{ExplicitPath: path}
	}
	if loading != nil {
		cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(loading, &clientcmd.ConfigOverrides{CurrentContext: c.kubeContext})
		cfg, err := cc.ClientConfig()
		if err != nil {
			return usagef("kubeconfig: %v", err)
		}
		c.rest = cfg
		if ns, _, err := cc.Namespace(); err == nil {
			c.kubeNS = ns
		}
	}
	ns, err := c.resolveNamespace()
	if err != nil {
		return err
	}
	c.namespace = ns
	return nil
}

// resolveNamespace: --namespace/INCUMBENT_NAMESPACE, POD_NAMESPACE, the
// service-account file, the kubeconfig context.
func (c *common) resolveNamespace() (string, error) {
	if c.namespace != "" {
		return c.namespace, nil
	}
	if ns := c.env.Getenv("POD_NAMESPACE"); ns != "" {
		return ns, nil
	}
	b, err := os.ReadFile(c.env.NamespaceFile)
	switch {
	case err == nil && strings.TrimSpace(string(b)) != "":
		return strings.TrimSpace(string(b)), nil
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return "", usagef("read the namespace from %s: %v", c.env.NamespaceFile, err)
	}
	if c.kubeNS != "" {
		return c.kubeNS, nil
	}
	return "", usagef("no namespace: give --namespace (or INCUMBENT_NAMESPACE or POD_NAMESPACE)")
}

// qualified is "namespace/name" for the lease name or, without a
// namespace, the name.
func (c *common) qualified(name string) string {
	if c.be.kubernetes && c.namespace != "" {
		return c.namespace + "/" + name
	}
	return name
}

// leaseNames returns every lease named, in order.
func (c *common) leaseNames() []string {
	switch {
	case len(c.leases) > 0:
		return c.leases
	case c.lease != "":
		return []string{c.lease}
	}
	return nil
}

// leasesValue is the value of --lease: one name, several separated by
// commas, or the flag repeated (also INCUMBENT_LEASE=a,b,c). A name given
// twice, or an empty one between commas, is refused. It sets *lease to the
// first name and *leases to all of them; several marks a command that takes
// several (its help says "names").
type leasesValue struct {
	lease   *string
	leases  *[]string
	several bool
}

func (v leasesValue) String() string {
	if v.leases == nil {
		return ""
	}
	if len(*v.leases) == 0 && v.lease != nil {
		return *v.lease
	}
	return strings.Join(*v.leases, ",")
}

func (v leasesValue) Set(s string) error {
	if strings.TrimSpace(s) == "" {
		return nil // as an empty string flag: --lease is then missing
	}
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		switch {
		case name == "":
			return fmt.Errorf("an empty lease name in %q", s)
		case slices.Contains(*v.leases, name):
			return fmt.Errorf("lease %q is named twice", name)
		}
		*v.leases = append(*v.leases, name)
	}
	*v.lease = (*v.leases)[0]
	return nil
}

func (v leasesValue) Type() string {
	if v.several {
		return "names"
	}
	return "string"
}

// oneLease refuses several leases for a command that acts on one.
func oneLease(command string, leases []string) error {
	if len(leases) <= 1 {
		return nil
	}
	return usagef("--lease (or INCUMBENT_LEASE) names %d leases (%s), and incumbent %s acts on one: give one name, once per lease (only incumbent run holds several)",
		len(leases), strings.Join(leases, ", "), command)
}
