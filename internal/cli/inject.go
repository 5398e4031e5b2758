package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/incumbent-io/incumbent/internal/buildinfo"
	"github.com/incumbent-io/incumbent/internal/inject"
)

type injectOptions struct {
	env        *Env
	o          inject.Options
	mode       string
	rbac       string
	files      []string
	service    bool
	pdb        bool
	policy     bool
	namespaces []string
}

// runFlagsAllowed are the flags of `incumbent run` that may follow inject's
// "--": the rest inject writes itself, or make no sense in a pod.
var runFlagsAllowed = []string{"lease-duration", "renew-deadline", "retry-period", "renew-interval", "grace",
	"health-url", "health-exec", "health-period", "health-timeout", "health-failure-threshold",
	"health-success-threshold", "log-format", "log-level", "on-refused"}

// runFlagsInject are the flags of `incumbent run` that inject writes, with
// the inject flag that sets each.
var runFlagsInject = map[string]string{
	"lease": "--lease", "http-addr": "--http-port", "control-addr": "--control-port",
	"leader-addr": "--mode leader-port and --leader-port", "label-pod": "--mode labels",
	"events": "--events", "await-app": "--await-app",
}

func newInjectCmd(e *Env) *cobra.Command {
	opts := &injectOptions{env: e}
	cmd := &cobra.Command{
		Use:   "inject --lease NAME[,NAME...] [--mode status|exec|labels|leader-port] [-f FILE]... [flags] [-- RUN-FLAGS...]",
		Short: "Add the incumbent sidecar to Kubernetes manifests, or print an admission policy that adds it",
		Long: `Read Kubernetes YAML (or JSON): files given with -f (a folder: its .yaml, .yml and .json
files), else standard input. Write it back with incumbent added to its workload (a
Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob or
Pod, alone or in a List or a KRM ResourceList), every other object as it was, with its
comments and the order of its fields:

  status       a native sidecar (an init container with restartPolicy: Always) with the
               status API on :4040 and the control endpoint on 127.0.0.1:4041
  labels       the same with --label-pod and --events, plus a Service <lease>-leader that
               routes to the leader and a PodDisruptionBudget
  leader-port  the same with --leader-addr=:8081 as its readinessProbe: only the leader is
               Ready (a native sidecar's readiness counts toward the pod's)
  exec         no sidecar: an init container copies the binary into an emptyDir, and the
               container's command becomes incumbent run ... -- COMMAND (it must be in the
               manifest: inject cannot know an image's entrypoint)

--lease a,b,c (the status mode only) writes one sidecar that holds every lease, one
candidate each (incumbent run --lease a,b,c); what inject adds is named after the first.

With the ServiceAccount, Role and RoleBinding of 'incumbent rbac' before the workload
(--rbac). A pod that names no service account (or "default") runs as incumbent-<lease>;
one that names its own keeps it, and the Role is bound to it. Injecting twice changes
nothing. Refused, with the reason (exit 2): an incumbent container from another version
or with other settings, a pod on the host's network (accept with --host-network), ports
incumbent needs, more than one workload (choose with --workload).

Flags after -- are passed to 'incumbent run' (timings, health checks, logs), checked
as run checks them.

As a Helm post-renderer or in a kustomize pipeline, and how to uninstall so that the
last leader can release its lease: see docs/sidecar.md.

--policy prints, instead, a MutatingAdmissionPolicy and a ValidatingAdmissionPolicy
(admissionregistration.k8s.io/v1, Kubernetes 1.36+; no webhook server) with their
bindings, and the RBAC objects of each namespace (-n): the API server then adds the same
sidecar to every Pod created with the label incumbent.io/lease=<lease> there.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && cmd.ArgsLenAtDash() != 0 {
				return usagef("unexpected argument %q: files are read with -f, and the flags for incumbent run go after --", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return opts.run(cmd.Flags(), args, cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	fs.Var(leasesValue{lease: &opts.o.Lease, leases: &opts.o.Leases, several: true}, "lease", "name of the lease (the election), or several, comma-separated (--mode status only: one sidecar holds them all); required")
	fs.StringVar(&opts.mode, "mode", string(inject.Status), "how the application learns it leads: status, exec, labels or leader-port")
	fs.StringArrayVarP(&opts.files, "filename", "f", nil, `file or folder to read, repeatable; "-" or none: standard input`)
	fs.StringVar(&opts.o.Image, "image", "", "the incumbent image (default: this version's, "+buildinfo.Image(version(e.Version))+")")
	fs.IntVar(&opts.o.HTTPPort, "http-port", inject.DefaultHTTPPort, "port of the status API and the probes")
	fs.IntVar(&opts.o.ControlPort, "control-port", inject.DefaultControlPort, "port of the control endpoint, on loopback")
	fs.IntVar(&opts.o.LeaderPort, "leader-port", inject.DefaultLeaderPort, "--mode leader-port: the port open only while leading")
	fs.BoolVar(&opts.o.Events, "events", false, "Kubernetes Events on the pod when leadership is gained or lost (default: on in the labels mode)")
	fs.BoolVar(&opts.o.AwaitApp, "await-app", false, "labels and leader-port modes: the application acts on leadership itself (follows /v1/watch), so the release waits for it")
	fs.BoolVar(&opts.o.HostNetwork, "host-network", false, "accept pods on the host's network: incumbent's ports are then the node's")
	fs.StringArrayVar(&opts.o.Workloads, "workload", nil, "the workload to inject, NAME or KIND/NAME, repeatable (default: the input's one workload)")
	fs.StringVar(&opts.o.Container, "container", "", "--mode exec: the container to run under incumbent (default: the pod's only one)")
	fs.StringVar(&opts.rbac, "rbac", string(inject.RBACInclude), "the ServiceAccount, Role and RoleBinding: include (before the workload), exclude, only (them alone), or keep (included, and annotated helm.sh/resource-policy: keep)")
	fs.BoolVar(&opts.service, "service", true, "--mode labels: add the Service that routes to the leader")
	fs.StringVar(&opts.o.ServiceName, "service-name", "", "--mode labels: the Service's name (default <lease>-leader)")
	fs.BoolVar(&opts.pdb, "pdb", true, "--mode labels: add a PodDisruptionBudget (maxUnavailable: 1), unless the input has one for the pods")
	fs.BoolVar(&opts.policy, "policy", false, "print a MutatingAdmissionPolicy that adds the sidecar to the labelled Pods of the -n namespaces, instead of reading manifests")
	fs.StringSliceVarP(&opts.namespaces, "namespace", "n", nil, "--policy: the namespaces it applies in, repeatable")
	annotateEnv(fs)
	return cmd
}

func (opts *injectOptions) run(fs *pflag.FlagSet, args []string, out io.Writer) error {
	o := &opts.o
	o.Mode = inject.Mode(opts.mode)
	o.RBAC = inject.RBAC(opts.rbac)
	o.NoService, o.NoPDB = !opts.service, !opts.pdb
	if !fs.Changed("events") {
		o.Events = o.Mode == inject.Labels
	}
	if o.Image == "" {
		o.Image = buildinfo.Image(version(opts.env.Version))
	}
	if err := checkRunArgs(opts.env, o.Mode, args); err != nil {
		return err
	}
	o.RunArgs = args
	if opts.policy {
		if len(opts.files) > 0 {
			return usagef("--policy reads no manifests: it prints the admission policy (without -f)")
		}
		if !fs.Changed("service") && !fs.Changed("pdb") {
			o.NoService, o.NoPDB = true, true
		}
		b, err := inject.Policy(*o, opts.namespaces)
		if err != nil {
			return usage(err)
		}
		_, err = out.Write(b)
		return failure(err)
	}
	if len(opts.namespaces) > 0 {
		return usagef("-n (or INCUMBENT_NAMESPACE) is for --policy: inject writes each object in its manifest's namespace (or none, as the manifest has it)")
	}
	inputs, err := opts.read()
	if err != nil {
		return err
	}
	o.Warn = func(msg string) { fmt.Fprintln(opts.env.Stderr, "incumbent inject: warning:", msg) }
	b, err := inject.Inject(*o, inputs...)
	if err != nil {
		return usage(err)
	}
	_, err = out.Write(b)
	return failure(err)
}

// read returns the inputs: the files and folders of -f, else standard
// input.
func (opts *injectOptions) read() ([]inject.Input, error) {
	files := opts.files
	if len(files) == 0 {
		files = []string{"-"}
	}
	var inputs []inject.Input
	for _, f := range files {
		if f == "-" {
			b, err := readAll(opts.env.Stdin)
			if err != nil {
				return nil, failuref("read standard input: %w", err)
			}
			inputs = append(inputs, inject.Input{Name: "stdin", Data: b})
			continue
		}
		st, err := os.Stat(f)
		if err != nil {
			return nil, usage(err)
		}
		names := []string{f}
		if st.IsDir() {
			entries, err := os.ReadDir(f)
			if err != nil {
				return nil, usage(err)
			}
			names = nil
			for _, en := range entries {
				if ext := filepath.Ext(en.Name()); !en.IsDir() && (ext == ".yaml" || ext == ".yml" || ext == ".json") {
					names = append(names, filepath.Join(f, en.Name()))
				}
			}
			sort.Strings(names)
			if len(names) == 0 {
				return nil, usagef("%s holds no .yaml, .yml or .json file", f)
			}
		}
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err != nil {
				return nil, usage(err)
			}
			inputs = append(inputs, inject.Input{Name: n, Data: b})
		}
	}
	return inputs, nil
}

func readAll(r io.Reader) ([]byte, error) {
	if r == nil {
		return nil, fmt.Errorf("no standard input")
	}
	return io.ReadAll(r)
}

// checkRunArgs checks the flags given for `incumbent run` as run checks
// them: known, meant for a sidecar, timings that keep leadership
// exclusive, a health check that can run.
func checkRunArgs(e *Env, mode inject.Mode, args []string) error {
	if len(args) == 0 {
		return nil
	}
	cmd, ro := runCommand(e)
	fs := cmd.Flags()
	if err := fs.Parse(args); err != nil {
		return usagef("the flags after -- are for incumbent run: %v", err)
	}
	if fs.NArg() > 0 {
		return usagef("after --, only flags for incumbent run (got %q); inject writes the command of --mode exec itself", fs.Args())
	}
	allowed := slices.Clone(runFlagsAllowed)
	if mode == inject.Exec {
		allowed = append(allowed, "on-child-exit")
	}
	var bad error
	fs.Visit(func(f *pflag.Flag) {
		switch {
		case bad != nil || slices.Contains(allowed, f.Name):
		case runFlagsInject[f.Name] != "":
			bad = usagef("--%s after -- is written by inject: use inject's %s", f.Name, runFlagsInject[f.Name])
		default:
			bad = usagef("--%s after -- is not for the sidecar inject writes (allowed: --%s)", f.Name, strings.Join(allowed, ", --"))
		}
	})
	if bad != nil {
		return bad
	}
	if err := ro.checkDurations(); err != nil {
		return err
	}
	if err := ro.checkTimingRule(); err != nil {
		return err
	}
	if mode == inject.Exec {
		ro.command = []string{"the workload"}
		if err := execMode.check(ro); err != nil {
			return err
		}
	}
	if healthMode.on(ro) {
		return healthMode.check(ro)
	}
	return nil
}
