package inject

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/incumbent-io/incumbent/internal/buildinfo"
)

// Mode is how the application learns that it leads (see docs/sidecar.md,
// "Choose your pattern").
type Mode string

const (
	// Status: the application asks the sidecar (the status API on
	// 127.0.0.1:4040) and acknowledges a step-down on the loopback control
	// endpoint (127.0.0.1:4041).
	Status Mode = "status"
	// Exec: the workload runs as incumbent's child, only while leading, in
	// its own container; no sidecar.
	Exec Mode = "exec"
	// Labels: the sidecar labels the leader's pod, and a Service selects it.
	Labels Mode = "labels"
	// LeaderPort: a port open only while leading is the sidecar's
	// readinessProbe, so only the leader's pod is Ready.
	LeaderPort Mode = "leader-port"
)

// Modes lists every mode.
func Modes() []Mode { return []Mode{Status, Exec, Labels, LeaderPort} }

// RBAC says what inject does with the ServiceAccount, Role and RoleBinding.
type RBAC string

const (
	// RBACInclude writes them before the first workload.
	RBACInclude RBAC = "include"
	// RBACExclude leaves them out (they are applied and deleted apart).
	RBACExclude RBAC = "exclude"
	// RBACOnly writes them alone, nothing else.
	RBACOnly RBAC = "only"
	// RBACKeep writes them as RBACInclude does, annotated
	// helm.sh/resource-policy: keep, so that helm uninstall leaves them in
	// place for the terminating pods to release the lease with.
	RBACKeep RBAC = "keep"
)

// RBACPlacements lists every RBAC value.
func RBACPlacements() []RBAC { return []RBAC{RBACInclude, RBACExclude, RBACOnly, RBACKeep} }

// Default ports.
const (
	DefaultHTTPPort    = 4040
	DefaultControlPort = 4041
	DefaultLeaderPort  = 8081
)

// Names inject gives what it adds.
const (
	// ContainerName is the sidecar's name.
	ContainerName = "incumbent"
	// InstallerName is exec mode's init container, which copies the binary.
	InstallerName = "incumbent-install"
	// TokenVolume holds the sidecar's own API credentials.
	TokenVolume = "incumbent-token"
	// BinVolume holds the binary exec mode runs.
	BinVolume = "incumbent-bin"
	// BinDir is where BinVolume is mounted.
	BinDir = "/incumbent-bin"
	// ExecBinary is the binary exec mode runs, copied from the image.
	ExecBinary = BinDir + "/incumbent"
	// TokenPath is where Kubernetes clients look for the credentials.
	TokenPath = "/var/run/secrets/kubernetes.io/serviceaccount"
	// StatusPortName and LeaderPortName name the sidecar's ports.
	StatusPortName = "incumbent"
	LeaderPortName = "incumbent-lead"
	// LeaseLabel and RoleLabel are the labels of the label mode, and
	// LeaseLabel also marks what inject generates and selects the pods of
	// an admission policy.
	LeaseLabel = "incumbent.io/lease"
	RoleLabel  = "incumbent.io/role"
	// RemovalLabel marks what the sidecar still needs while its pod
	// terminates (its ServiceAccount, Role and RoleBinding), with the value
	// RemoveLast: delete them last, once the pods are gone.
	RemovalLabel = "incumbent.io/removal"
	RemoveLast   = "last"
	// HelmKeep is Helm's annotation that uninstall leaves an object alone.
	HelmKeep = "helm.sh/resource-policy"
)

// Options say what to inject.
type Options struct {
	// Lease names the election. Required.
	Lease string
	// Leases, for a sidecar that holds several (run --lease a,b,c; the
	// status mode only), names them all, in order, Lease being the first.
	// What inject writes beside the workload is named and labelled after
	// the first.
	Leases []string
	// Mode, default Status.
	Mode Mode
	// Image is the incumbent image. Default buildinfo.Image(buildinfo.Devel).
	Image string
	// HTTPPort (the status API and the probes), ControlPort (loopback:
	// acknowledgements and withdraw) and LeaderPort (LeaderPort mode).
	// Defaults 4040, 4041, 8081.
	HTTPPort, ControlPort, LeaderPort int
	// Events adds --events (Kubernetes Events on the pod).
	Events bool
	// AwaitApp keeps run's --await-app in the label and leader-port modes,
	// for an application that acts on leadership itself (the release then
	// waits for it); otherwise they release at once.
	AwaitApp bool
	// RunArgs are more flags for `incumbent run`, appended as they are
	// (the caller checks them against run's flags).
	RunArgs []string
	// HostNetwork accepts pods on the host's network, whose ports are the
	// node's.
	HostNetwork bool
	// Workloads selects the workloads to inject, each "NAME" or
	// "KIND/NAME". Default: the one workload of the input.
	Workloads []string
	// Container is the container exec mode runs under incumbent. Default:
	// the pod's only container.
	Container string
	// RBAC, default RBACInclude.
	RBAC RBAC
	// NoService and NoPDB leave out the label mode's leader Service and
	// PodDisruptionBudget.
	NoService, NoPDB bool
	// ServiceName names the leader Service. Default <lease>-leader.
	ServiceName string
	// Warn, when set, receives what inject accepts but a user should know
	// (a leader-port Deployment whose rollouts would deadlock), one line
	// each, naming the place.
	Warn func(string)
}

// imagePattern is what an image reference may look like here: no spaces,
// nothing YAML would read as syntax.
var imagePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$`)

// complete fills in the defaults and validates o.
func (o *Options) complete() error {
	if o.Lease == "" {
		return errors.New("--lease is required: the name of the election (the Lease)")
	}
	for _, what := range []struct{ name, value string }{
		{"lease name", o.Lease}, {"service account and Role name", o.ownName()},
	} {
		if msgs := validation.IsDNS1123Subdomain(what.value); len(msgs) > 0 {
			return fmt.Errorf("invalid %s %q: %s", what.name, what.value, msgs[0])
		}
	}
	if msgs := validation.IsValidLabelValue(o.Lease); len(msgs) > 0 {
		return fmt.Errorf("invalid lease name %q: it is also the value of the %s label: %s", o.Lease, LeaseLabel, msgs[0])
	}
	if len(o.Leases) > 0 && o.Leases[0] != o.Lease {
		return fmt.Errorf("lease %q is not the first of %q", o.Lease, o.Leases)
	}
	for i, name := range o.Leases {
		if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
			return fmt.Errorf("invalid lease name %q: %s", name, msgs[0])
		}
		if slices.Contains(o.Leases[:i], name) {
			return fmt.Errorf("lease %q is named twice", name)
		}
	}
	if o.Mode == "" {
		o.Mode = Status
	}
	if !slices.Contains(Modes(), o.Mode) {
		return fmt.Errorf("unknown mode %q: one of %s", o.Mode, joinModes())
	}
	if len(o.Leases) > 1 && o.Mode != Status {
		return fmt.Errorf("--mode %s takes one lease, and --lease names %d (%s): %s; with several leases use --mode status",
			o.Mode, len(o.Leases), strings.Join(o.Leases, ", "), oneLeaseWhy[o.Mode])
	}
	if o.Image == "" {
		o.Image = buildinfo.Image(buildinfo.Devel)
	}
	if !imagePattern.MatchString(o.Image) {
		return fmt.Errorf("invalid image %q", o.Image)
	}
	if o.HTTPPort == 0 {
		o.HTTPPort = DefaultHTTPPort
	}
	if o.ControlPort == 0 {
		o.ControlPort = DefaultControlPort
	}
	if o.LeaderPort == 0 {
		o.LeaderPort = DefaultLeaderPort
	}
	ports := []int{o.HTTPPort, o.ControlPort}
	if o.Mode == LeaderPort {
		ports = append(ports, o.LeaderPort)
	}
	for i, p := range ports {
		if p < 1 || p > 65535 {
			return fmt.Errorf("port %d is not between 1 and 65535", p)
		}
		if slices.Contains(ports[:i], p) {
			return fmt.Errorf("the sidecar's ports must differ: %d is given twice", p)
		}
	}
	if o.AwaitApp && o.Mode != Labels && o.Mode != LeaderPort {
		return fmt.Errorf("--await-app is for the labels and leader-port modes (the status mode always awaits the application, exec mode its child)")
	}
	if o.Container != "" && o.Mode != Exec {
		return fmt.Errorf("--container is for --mode exec (the container that runs under incumbent)")
	}
	for _, a := range o.RunArgs {
		if a == "--" {
			return errors.New(`the flags for incumbent run may not hold "--": inject writes the command itself`)
		}
	}
	if o.RBAC == "" {
		o.RBAC = RBACInclude
	}
	if !slices.Contains(RBACPlacements(), o.RBAC) {
		return fmt.Errorf("unknown --rbac %q: one of include, exclude, only, keep", o.RBAC)
	}
	if o.ServiceName == "" {
		o.ServiceName = o.Lease + "-leader"
	}
	if o.Mode == Labels && !o.NoService {
		if msgs := validation.IsDNS1035Label(o.ServiceName); len(msgs) > 0 {
			return fmt.Errorf("the leader Service cannot be named %q: %s; choose a name with --service-name", o.ServiceName, msgs[0])
		}
	}
	for _, w := range o.Workloads {
		if w == "" || strings.Count(w, "/") > 1 || strings.HasPrefix(w, "/") || strings.HasSuffix(w, "/") {
			return fmt.Errorf("invalid --workload %q: NAME or KIND/NAME, e.g. Deployment/web", w)
		}
	}
	return nil
}

// oneLeaseWhy says why a mode acts for one lease only.
var oneLeaseWhy = map[Mode]string{
	Exec:       "the workload runs only while one lease is held",
	Labels:     "the pod is labelled leader or follower of one lease",
	LeaderPort: "the readiness port is open while one lease is held",
}

// leaseArg is the value of run's --lease: every lease, comma-separated.
func (o *Options) leaseArg() string {
	if len(o.Leases) > 1 {
		return strings.Join(o.Leases, ",")
	}
	return o.Lease
}

func joinModes() string {
	var s []string
	for _, m := range Modes() {
		s = append(s, string(m))
	}
	return strings.Join(s, ", ")
}

// ownName names the ServiceAccount, Role, RoleBinding and
// PodDisruptionBudget inject generates: incumbent-<lease>.
func (o *Options) ownName() string { return "incumbent-" + o.Lease }

// OwnServiceAccount is the name of the ServiceAccount, Role and RoleBinding
// inject writes for o ("incumbent-<lease>"): the service account the pods
// run as, whose writes incumbent fence fences.
func (o Options) OwnServiceAccount() string { return o.ownName() }

// controlAddr is the --control-addr to write, or "" for the default.
func (o *Options) controlAddr() string {
	if o.ControlPort == DefaultControlPort {
		return ""
	}
	return "127.0.0.1:" + strconv.Itoa(o.ControlPort)
}

// arg is one argument of `incumbent run`, with the comment written above it.
type arg struct {
	Value   string
	Comment []string
}

// args returns the arguments of `incumbent run` (without the command of
// exec mode).
func (o *Options) args() []arg {
	a := []arg{{Value: "run"}, {Value: "--lease=" + o.leaseArg()}, {
		Value: "--http-addr=:" + strconv.Itoa(o.HTTPPort),
		Comment: []string{
			"On every interface, for the kubelet's probes (and Prometheus); the",
			"control endpoint (acknowledgements, withdraw) stays on loopback.",
		},
	}}
	if c := o.controlAddr(); c != "" {
		a = append(a, arg{Value: "--control-addr=" + c})
	}
	switch o.Mode {
	case Labels:
		a = append(a, arg{Value: "--label-pod", Comment: []string{
			"Labels this pod incumbent.io/role=leader or follower: the leader Service",
			"routes to the leader alone, while every replica stays Ready.",
		}})
	case LeaderPort:
		a = append(a, arg{Value: "--leader-addr=:" + strconv.Itoa(o.LeaderPort), Comment: []string{
			"Open only while leading: the readinessProbe below.",
		}})
	}
	if o.Events {
		a = append(a, arg{Value: "--events", Comment: []string{"Events on the pod when leadership is gained or lost."}})
	}
	if (o.Mode == Labels || o.Mode == LeaderPort) && !o.AwaitApp {
		a = append(a, arg{Value: "--await-app=false", Comment: []string{
			"The application does not act on leadership itself (the traffic finds the",
			"leader): release at once when a term ends. inject --await-app keeps the",
			"release waiting for an application that does.",
		}})
	}
	for _, r := range o.RunArgs {
		a = append(a, arg{Value: r})
	}
	return a
}

// argValues returns the values of args.
func argValues(args []arg) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a.Value
	}
	return out
}
