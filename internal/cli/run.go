package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/internal/kubeclient"
	"github.com/incumbent-io/incumbent/internal/leaderport"
	"github.com/incumbent-io/incumbent/internal/metrics"
	"github.com/incumbent-io/incumbent/internal/podevents"
	"github.com/incumbent-io/incumbent/internal/podlabel"
	"github.com/incumbent-io/incumbent/internal/rbac"
	"github.com/incumbent-io/incumbent/internal/sidecar"
	"github.com/incumbent-io/incumbent/internal/statusapi"
	"github.com/incumbent-io/incumbent/internal/supervise"
	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/memory"
)

// DefaultHTTPAddr is where the status API listens unless told otherwise.
const DefaultHTTPAddr = "127.0.0.1:4040"

type runOptions struct {
	common
	identity         string
	pod              string
	leaseDuration    time.Duration
	renewDeadline    time.Duration
	retryPeriod      time.Duration
	grace            time.Duration
	httpAddr         string
	leaderAddr       string
	labelPod         bool
	events           bool
	onChildExit      string
	preflightTimeout time.Duration
	command          []string
}

func newRunCmd(e *Env) *cobra.Command {
	o := &runOptions{common: common{env: e}}
	cmd := &cobra.Command{
		Use:   "run --lease NAME [flags] [-- COMMAND [ARGS...]]",
		Short: "Campaign for a lease and act while leading (the sidecar)",
		Long: `Campaign for the lease, follow when another candidate leads, and campaign again after
losing: never one-shot. Modes, all optional and combinable:

  status API    always on --http-addr (empty to disable): /v1/status, / ({"name":...}),
                /v1/watch (Server-Sent Events), /readyz/leader, /healthz, /metrics
  leader port   --leader-addr: a port open only while leading (readinessProbe target)
  exec          -- COMMAND: run COMMAND only while leading, with INCUMBENT_TERM (fencing
                token), INCUMBENT_IDENTITY, INCUMBENT_LEASE in its environment; on step-down
                SIGTERM to its process group, SIGKILL shortly before --grace ends; the
                lease is released only after it is gone
  pod labels    --label-pod: incumbent.io/role=leader|follower, incumbent.io/lease=NAME
  events        --events: Kubernetes Events on the pod when leadership is gained or lost

SIGTERM or SIGINT: stop the work, release the lease, exit 0. SIGHUP, SIGUSR1, SIGUSR2,
SIGWINCH and SIGQUIT are forwarded to the child.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && cmd.ArgsLenAtDash() != 0 {
				return usagef("unexpected argument %q: put the command to run after --", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.command = args
			return o.run(cmd.Context())
		},
	}
	fs := cmd.Flags()
	o.common.addFlags(fs)
	fs.StringVar(&o.identity, "identity", "", "this candidate's identity in the lease (default: POD_NAME, then the hostname)")
	fs.StringVar(&o.pod, "pod", "", "this pod's name, for --label-pod and --events (default: POD_NAME, then the identity)")
	fs.DurationVar(&o.leaseDuration, "lease-duration", election.DefaultLeaseDuration, "how long followers wait, after the lease last changed, before taking it over")
	fs.DurationVar(&o.renewDeadline, "renew-deadline", election.DefaultRenewDeadline, "how long the leader acts without a successful renewal before stepping down")
	fs.DurationVar(&o.retryPeriod, "retry-period", election.DefaultRetryPeriod, "interval between renewals, and between reads while the watch is down")
	fs.DurationVar(&o.grace, "grace", election.DefaultGrace, "how long the work (the child) gets to stop after the term ends")
	fs.StringVar(&o.httpAddr, "http-addr", DefaultHTTPAddr, "address of the status API; empty to disable")
	fs.StringVar(&o.leaderAddr, "leader-addr", "", "address of a port open only while leading, e.g. :8080")
	fs.BoolVar(&o.labelPod, "label-pod", false, "label this pod incumbent.io/role=leader|follower and incumbent.io/lease=NAME (Kubernetes only)")
	fs.BoolVar(&o.events, "events", false, "record Kubernetes Events on this pod when leadership is gained or lost (Kubernetes only)")
	fs.StringVar(&o.onChildExit, "on-child-exit", string(supervise.Release), "when the child exits on its own while leading: release (step down, let another replica run it), restart (run it again in this term) or exit (step down and exit with its code)")
	fs.DurationVar(&o.preflightTimeout, "preflight-timeout", 10*time.Second, "how long the startup read of the lease may take before incumbent gives up")
	annotateEnv(fs)
	return cmd
}

// validate checks everything that needs no network, after setup.
func (o *runOptions) validate() (supervise.Policy, error) {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--lease-duration", o.leaseDuration}, {"--renew-deadline", o.renewDeadline}, {"--retry-period", o.retryPeriod},
		{"--grace", o.grace}, {"--preflight-timeout", o.preflightTimeout}} {
		if d.v <= 0 {
			return "", usagef("%s must be positive, got %v", d.name, d.v)
		}
	}
	policy, err := supervise.ParsePolicy(o.onChildExit)
	if err != nil {
		return "", usagef("--on-child-exit: %v", err)
	}
	if len(o.command) == 0 && o.onChildExit != string(supervise.Release) {
		return "", usagef("--on-child-exit is for a command given after --, and there is none")
	}
	if o.labelPod {
		if err := o.kubeOnly("--label-pod"); err != nil {
			return "", err
		}
	}
	if o.events {
		if err := o.kubeOnly("--events"); err != nil {
			return "", err
		}
	}
	for _, a := range []struct{ flag, addr string }{{"--http-addr", o.httpAddr}, {"--leader-addr", o.leaderAddr}} {
		if a.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			return "", usagef("invalid %s %q: %v", a.flag, a.addr, err)
		}
	}
	if o.httpAddr != "" && o.httpAddr == o.leaderAddr {
		return "", usagef("--http-addr and --leader-addr must differ (both %q)", o.httpAddr)
	}
	if o.identity == "" {
		o.identity = o.env.Getenv("POD_NAME")
	}
	if o.identity == "" {
		h, err := o.env.Hostname()
		if err != nil {
			return "", usagef("no identity: give --identity (or POD_NAME); the hostname is unavailable: %v", err)
		}
		o.identity = h
	}
	if o.pod == "" {
		o.pod = o.env.Getenv("POD_NAME")
	}
	if o.pod == "" {
		o.pod = o.identity
	}
	return policy, nil
}

func (o *runOptions) run(ctx context.Context) error {
	if err := o.setupLocal(); err != nil {
		return err
	}
	policy, err := o.validate()
	if err != nil {
		return err
	}
	cfg := election.Config{Identity: o.identity, LeaseDuration: o.leaseDuration,
		RenewDeadline: o.renewDeadline, RetryPeriod: o.retryPeriod, Grace: o.grace}
	// The timing rules first, before any connection is resolved; the store
	// is a stand-in, only for Validate.
	cfg.Store = memory.New(o.lease)
	if err := cfg.Validate(); err != nil {
		return usagef("timing flags (--lease-duration %v, --renew-deadline %v, --retry-period %v, --grace %v): %v",
			o.leaseDuration, o.renewDeadline, o.retryPeriod, o.grace, strings.TrimPrefix(err.Error(), election.ErrInvalidConfig.Error()+": "))
	}
	if err := o.connect(); err != nil {
		return err
	}
	log := o.logger
	st, err := o.be.open(ctx, &o.common)
	if err != nil {
		return failure(err)
	}
	m := metrics.New(o.leaseName())
	sc := &sidecar.Sidecar{Logger: log}
	cfg.Store, cfg.Logger, cfg.Metrics = st, log, m

	// Duties, in no particular order: they all start and stop together.
	var duties []sidecar.Duty
	if o.leaderAddr != "" {
		p, err := leaderport.New(o.leaderAddr, log)
		if err != nil {
			return failure(err)
		}
		duties = append(duties, p)
	}
	var kc *kubeclient.Client
	if o.labelPod || o.events {
		if kc, err = kubeclient.New(o.rest); err != nil {
			return failure(err)
		}
	}
	var labeler *podlabel.Labeler
	if o.labelPod {
		if labeler, err = podlabel.New(kc.Pods(o.namespace), o.pod, o.lease, log); err != nil {
			return usage(err)
		}
		duties = append(duties, labeler)
		sc.Background = append(sc.Background, labeler.Run)
	}
	if o.events {
		rec, err := podevents.New(kc.Events(o.namespace), kc.Pods(o.namespace), podevents.Options{
			Namespace: o.namespace, Pod: o.pod, UID: o.env.Getenv("POD_UID"), Lease: o.leaseName(), Logger: log})
		if err != nil {
			return usage(err)
		}
		duties = append(duties, rec)
		sc.Background = append(sc.Background, func(ctx context.Context) {
			<-ctx.Done()
			wctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			rec.Wait(wctx)
		})
	}
	if len(o.command) > 0 {
		sup, err := supervise.New(supervise.Config{Command: o.command, Lease: o.lease, Namespace: o.namespace,
			Grace: o.grace, OnExit: policy, Exit: sc.Stop, Logger: log})
		if err != nil {
			return usage(err)
		}
		duties = append(duties, sup)
		sc.Forward = sup.Signal
	}
	cfg.Lead = sidecar.Lead(duties...)

	if err := o.preflight(ctx, st, labeler); err != nil {
		if ctx.Err() != nil {
			log.Info("stopped before the election started", "cause", context.Cause(ctx))
			return nil
		}
		return failure(err)
	}

	el, err := election.New(cfg)
	if err != nil {
		return usage(err)
	}
	sc.Elector = el
	if o.httpAddr != "" {
		ln, err := net.Listen("tcp", o.httpAddr)
		if err != nil {
			return failuref("status API: %w", err)
		}
		h, err := statusapi.New(statusapi.Options{Source: el, Lease: o.lease, Namespace: o.namespace,
			Metrics: m.Handler(), Logger: log})
		if err != nil {
			ln.Close()
			return failure(err)
		}
		sc.Listener, sc.Handler = ln, h
		log.Info("status API listening", "addr", ln.Addr().String())
	}
	log.Info("incumbent starting", "lease", st.String(), "identity", o.identity, "instance", el.Instance(),
		"version", version(o.env.Version), "lease_duration", o.leaseDuration, "renew_deadline", o.renewDeadline,
		"retry_period", o.retryPeriod, "grace", o.grace, "command", o.command, "leader_addr", o.leaderAddr,
		"label_pod", o.labelPod, "events", o.events)
	code, err := sc.Run(ctx)
	if err != nil {
		return failure(err)
	}
	log.Info("incumbent stopped", "exit_code", code)
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}

// preflight reads the lease once, with a bounded timeout, and on Kubernetes
// checks every permission the sidecar will use, so that an unreachable
// store or a missing permission is a clear error at startup, not a hang.
func (o *runOptions) preflight(ctx context.Context, st store.Store, labeler *podlabel.Labeler) error {
	pctx, cancel := context.WithTimeout(ctx, o.preflightTimeout)
	defer cancel()
	_, err := st.Get(pctx)
	switch {
	case err == nil, errors.Is(err, store.ErrNotFound):
	case errors.Is(err, store.ErrPermission):
		return fmt.Errorf("preflight: %w", err)
	case pctx.Err() != nil && ctx.Err() == nil:
		where := ""
		if o.rest != nil {
			where = " at " + o.rest.Host
		}
		return fmt.Errorf("preflight: no answer from the store%s within %v (--preflight-timeout): %w", where, o.preflightTimeout, err)
	default:
		return fmt.Errorf("preflight: %w", err)
	}
	if !o.be.kubernetes {
		return nil
	}
	kc, err := kubeclient.New(o.rest)
	if err != nil {
		return fmt.Errorf("preflight: %w", err)
	}
	err = rbac.Check(pctx, kc.SelfSubjectAccessReviews(), rbac.Options{Lease: o.lease, Namespace: o.namespace,
		LabelPod: o.labelPod, Events: o.events})
	switch {
	case errors.Is(err, rbac.ErrCannotCheck):
		o.logger.Warn("preflight: cannot check RBAC permissions up front; the first refused request will tell", "err", err)
	case err != nil:
		return fmt.Errorf("preflight: %w", err)
	}
	if labeler != nil {
		if err := labeler.Check(pctx); err != nil {
			return fmt.Errorf("preflight: --label-pod: %w", err)
		}
	}
	return nil
}
