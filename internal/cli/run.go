package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/internal/kubeclient"
	"github.com/incumbent-io/incumbent/internal/metrics"
	"github.com/incumbent-io/incumbent/internal/sidecar"
	"github.com/incumbent-io/incumbent/internal/statusapi"
	"github.com/incumbent-io/incumbent/internal/supervise"
	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/memory"
)

type runOptions struct {
	common
	identity            string
	pod                 string
	leaseDuration       time.Duration
	renewDeadline       time.Duration
	retryPeriod         time.Duration
	renewInterval       time.Duration // 0: --retry-period
	grace               time.Duration
	preflightTimeout    time.Duration // deprecated: no effect
	preflightTimeoutSet bool
	command             []string

	// The modes' flags (see mode_*.go).
	httpAddr    string
	controlAddr string
	awaitApp    bool
	awaitAppSet bool // --await-app was given
	leaderAddr  string
	onChildExit string
	policy      supervise.Policy
	labelPod    bool
	events      bool
	onRefused   string // --on-refused: wait or exit
	podKnown    bool   // --pod or POD_NAME named the pod (not the identity fallback)

	healthURL       string
	healthExec      string
	healthPeriod    time.Duration
	healthTimeout   time.Duration
	healthFailures  int
	healthSuccesses int
	health          *election.Health

	startup  *statusapi.Startup // what startup waits for, as the status API reports it
	warned   map[string]bool    // optional permissions reported missing
	refusals *refusals          // reports refused permissions under --on-refused=wait
}

func newRunCmd(e *Env) *cobra.Command {
	cmd, _ := runCommand(e)
	return cmd
}

// runCommand returns the run command and the options its flags set.
func runCommand(e *Env) (*cobra.Command, *runOptions) {
	o := &runOptions{common: common{env: e, name: "run", severalLeases: true}, startup: &statusapi.Startup{}}
	cmd := &cobra.Command{
		Use:   "run --lease NAME[,NAME...] [flags] [-- COMMAND [ARGS...]]",
		Short: "Campaign for a lease and act while leading (the sidecar)",
		Long: `Campaign for the lease, follow when another candidate leads, and campaign again after
losing: never one-shot. Modes, all optional and combinable:

  status API    always on --http-addr (empty to disable): /v1/status, / ({"name":...}),
                /v1/watch (Server-Sent Events), /readyz, /readyz/leader, /healthz, /metrics;
                on --control-addr (loopback only): POST /v1/stepped-down, POST /v1/withdraw
  leader port   --leader-addr: a port open only while leading (readinessProbe target)
  exec          -- COMMAND: run COMMAND only while leading, with INCUMBENT_TERM (fencing
                token), INCUMBENT_IDENTITY, INCUMBENT_LEASE in its environment; on step-down
                SIGTERM to its process group, SIGKILL shortly before --grace ends; the
                lease is released only after it is gone
  pod labels    --label-pod: incumbent.io/role=leader|follower, incumbent.io/lease=NAME
  events        --events: Kubernetes Events on the pod when leadership is gained or lost

Several leases (--lease a,b,c, or the flag repeated; INCUMBENT_LEASE=a,b,c): one candidate
per lease in this process, with one identity and one store connection, each lease with
its own status: GET /v1/leases (all, in the order given), /v1/leases/NAME/status and
/v1/leases/NAME/watch, and POST /v1/leases/NAME/stepped-down on --control-addr. The
endpoints of one election (/v1/status, /, /v1/watch, /readyz/leader, /v1/stepped-down)
then answer 400 naming these; /readyz waits for every lease, /healthz fails naming the
lease whose election is broken, /metrics labels each series with its lease. A health
check (--health-*) gates every lease at once; --events records events per lease. What
acts on one workload refuses several leases (exit 2): a command after --, --leader-addr,
--label-pod.

Without a command, the application beside the sidecar is told at once when a term ends
(isLeader turns false), and the lease is released only after --grace, or as soon as the
application says it stopped (POST /v1/stepped-down): --await-app.

Startup: the status API serves at once (/healthz answers 200 and says what the sidecar
waits for; /readyz 503 until the lease was read); the store and the permissions are
checked, and retried with backoff while the store is unreachable.

A refused permission (a Role that lacks a verb), at startup or later: under
--on-refused=wait (the default) the sidecar stays up, logs at error level which verb on
which resource is refused, records a Warning Event PermissionDenied on its pod (POD_NAME,
POD_UID; needs create on events), and retries: at startup with backoff, saying so on
/healthz and /v1/status too, and the election starts once the Role is fixed; later, every
retry period, as for an unreachable server (a leader steps down at its renew deadline).
Either way without a restart. Under
--on-refused=exit it exits with code 3 at once (the default before this flag existed).

SIGTERM or SIGINT: stop the work, release the lease, exit 0. SIGHUP, SIGUSR1, SIGUSR2,
SIGWINCH and SIGQUIT are forwarded to the child. Exit codes: 0 stopped in order (or the
lease was never needed), 1 failure at run time, 2 invalid flags or configuration, 3 a
permission the store refuses (the message names it): at once under --on-refused=exit;
under wait only when the backend cannot wait (an etcd login refused, an unwritable
lease folder).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && cmd.ArgsLenAtDash() != 0 {
				return usagef("unexpected argument %q: put the command to run after --", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.command = args
			o.awaitAppSet = cmd.Flags().Changed("await-app")
			if !cmd.Flags().Changed("control-addr") && e.Getenv("KUBERNETES_SERVICE_HOST") != "" {
				o.controlAddr = DefaultControlAddr // inside a pod
			}
			e.terminationMessages = true // run is what a container runs
			o.preflightTimeoutSet = cmd.Flags().Changed("preflight-timeout")
			return o.run(cmd.Context())
		},
	}
	fs := cmd.Flags()
	o.common.addFlags(fs)
	fs.StringVar(&o.identity, "identity", "", "this candidate's identity in the lease (default: POD_NAME, then the hostname)")
	fs.StringVar(&o.pod, "pod", "", "this pod's name, for --label-pod, --events and the Event of a refused permission (default: POD_NAME, then the identity)")
	fs.StringVar(&o.podUID, "pod-uid", "", "this pod's UID, recorded on the Lease while leading so that the API server's fence (incumbent fence) tells this pod from one re-created with its name (default: POD_UID)")
	fs.DurationVar(&o.leaseDuration, "lease-duration", election.DefaultLeaseDuration, "how long followers wait, after the lease last changed, before taking it over")
	fs.DurationVar(&o.renewDeadline, "renew-deadline", election.DefaultRenewDeadline, "how long the leader acts without a successful renewal before stepping down")
	fs.DurationVar(&o.retryPeriod, "retry-period", election.DefaultRetryPeriod, "interval between retries of a failed renewal or acquisition, and between reads while the watch is down")
	fs.DurationVar(&o.renewInterval, "renew-interval", 0, "how often the leader renews while its renewals succeed (default: --retry-period); longer means fewer writes but fewer tries before --renew-deadline: at most --renew-deadline minus --retry-period")
	fs.Lookup("renew-interval").DefValue = "the retry period"
	fs.DurationVar(&o.grace, "grace", election.DefaultGrace, "how long the work (the child, or the application) gets to stop after the term ends")
	o.onRefused = onRefusedWait
	fs.Var(onRefusedValue{p: &o.onRefused}, "on-refused", "when the store refuses a permission the sidecar needs: wait (stay up, report which one, retry until it is granted) or exit (exit 3 at once)")
	fs.Lookup("on-refused").DefValue = onRefusedWait
	fs.DurationVar(&o.preflightTimeout, "preflight-timeout", 10*time.Second, "no effect (startup waits for the store with backoff)")
	_ = fs.MarkHidden("preflight-timeout")
	for _, m := range runModes() {
		m.flags(fs, o)
	}
	annotateEnv(fs)
	return cmd, o
}

// checkDurations checks that each timing flag is positive.
func (o *runOptions) checkDurations() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--lease-duration", o.leaseDuration}, {"--renew-deadline", o.renewDeadline}, {"--retry-period", o.retryPeriod},
		{"--grace", o.grace}, {"--renew-interval", o.renewInterval}} {
		if d.v <= 0 && (d.name != "--renew-interval" || d.v < 0) {
			return usagef("%s must be positive, got %v", d.name, d.v)
		}
	}
	return nil
}

// checkTimingRule checks the timing flags together against the election's
// timing rules.
func (o *runOptions) checkTimingRule() error {
	// The store is a stand-in, only for Validate.
	cfg := election.Config{Identity: "timing-check", Store: memory.New("timing-check"), LeaseDuration: o.leaseDuration,
		RenewDeadline: o.renewDeadline, RetryPeriod: o.retryPeriod, RenewInterval: o.renewInterval, Grace: o.grace}
	if err := cfg.Validate(); err != nil {
		renew := ""
		if o.renewInterval != 0 {
			renew = fmt.Sprintf(", --renew-interval %v", o.renewInterval)
		}
		return usagef("timing flags (--lease-duration %v, --renew-deadline %v, --retry-period %v%s, --grace %v): %v",
			o.leaseDuration, o.renewDeadline, o.retryPeriod, renew, o.grace, strings.TrimPrefix(err.Error(), election.ErrInvalidConfig.Error()+": "))
	}
	return nil
}

// validate checks everything that needs no network, after setupLocal.
func (o *runOptions) validate() error {
	if err := o.checkDurations(); err != nil {
		return err
	}
	if err := o.checkOnRefused(); err != nil {
		return err
	}
	if len(o.command) == 0 && o.onChildExit != string(supervise.Release) {
		return usagef("--on-child-exit is for a command given after --, and there is none")
	}
	if names := o.leaseNames(); len(names) > 1 {
		for _, m := range runModes() {
			if m.on(o) && m.oneLease != "" {
				return usagef("%s: it takes one lease, and --lease names %d (%s); run one incumbent per lease for it, or follow each lease on the status API (GET /v1/leases/NAME/watch)",
					m.oneLease, len(names), strings.Join(names, ", "))
			}
		}
	}
	for _, m := range runModes() {
		if (m.on(o) || m.name == statusAPIMode.name) && m.check != nil {
			if err := m.check(o); err != nil {
				return err
			}
		}
	}
	if o.identity == "" {
		o.identity = o.env.Getenv("POD_NAME")
	}
	if o.identity == "" {
		h, err := o.env.Hostname()
		if err != nil {
			return usagef("no identity: give --identity (or POD_NAME); the hostname is unavailable: %v", err)
		}
		o.identity = h
	}
	if o.pod == "" {
		o.pod = o.env.Getenv("POD_NAME")
	}
	o.podKnown = o.pod != ""
	if o.podUID == "" {
		o.podUID = o.env.Getenv("POD_UID")
	}
	if o.pod == "" {
		o.pod = o.identity
	}
	return nil
}

func (o *runOptions) run(ctx context.Context) error {
	if err := o.setupLocal(); err != nil {
		return err
	}
	if err := o.validate(); err != nil {
		return err
	}
	if o.preflightTimeoutSet {
		o.logger.Warn("--preflight-timeout has no effect any more: startup waits for the store, with backoff, until it answers")
	}
	// The timing rules first, before any connection is resolved.
	if err := o.checkTimingRule(); err != nil {
		return err
	}
	if err := o.connect(); err != nil {
		return err
	}
	log := o.logger
	names := o.leaseNames()
	sts, err := o.be.open(ctx, &o.common, names)
	if err != nil {
		return failure(err)
	}
	sc := &sidecar.Sidecar{Logger: log}
	env := &modeEnv{log: log, stop: sc.Stop, kube: o.kubeClient()}
	for i, name := range names {
		c := &candidacy{name: name, store: sts[i], log: log}
		if i == 0 {
			c.metrics = metrics.New(o.qualified(name))
		} else {
			c.metrics = env.leases[0].metrics.For(o.qualified(name))
		}
		if len(names) > 1 {
			c.log = log.With("lease", sts[i].String())
		}
		env.leases = append(env.leases, c)
	}
	env.store, env.metrics = env.leases[0].store, env.leases[0].metrics
	o.refusals = o.newRefusals(env)

	// The electors exist before the modes are built (they report on them);
	// the modes' duties are bound to each through its Lead.
	for _, c := range env.leases {
		cfg := election.Config{Identity: o.identity, LeaseDuration: o.leaseDuration,
			RenewDeadline: o.renewDeadline, RetryPeriod: o.retryPeriod, RenewInterval: o.renewInterval, Grace: o.grace,
			Store: c.store, Logger: log, Metrics: c.metrics}
		if o.onRefused == onRefusedWait {
			// A permission refused after startup (a Role edited while the
			// election runs) is retried, not an end of Run.
			rr := &retryRefused{Store: c.store, r: o.refusals}
			if len(env.leases) > 1 {
				rr.lease = c.store.String()
			}
			cfg.Store = rr
		}
		for _, md := range runModes() {
			if md.on(o) && md.configure != nil {
				md.configure(o, &cfg)
			}
		}
		cfg.Lead = func(term *election.Term) { sidecar.Lead(c.duties...)(term) }
		el, err := election.New(cfg)
		if err != nil {
			return usage(err)
		}
		c.elector = el
	}
	env.elector = env.leases[0].elector
	env.withdraw = func() {
		for _, c := range env.leases {
			c.elector.Withdraw()
		}
	}
	if len(env.leases) == 1 {
		sc.Elector = env.elector
	} else {
		named := make([]sidecar.Named, len(env.leases))
		for i, c := range env.leases {
			named[i] = sidecar.Named{Lease: c.name, Elector: c.elector}
		}
		sc.Elector = sidecar.All(named...)
	}
	var preflights []func(ctx context.Context) error
	closeServers := func() {
		for _, s := range sc.Servers {
			s.Listener.Close()
		}
	}
	for _, md := range runModes() {
		if !md.on(o) {
			continue
		}
		p, err := md.build(o, env)
		if err != nil {
			closeServers()
			return err
		}
		if p.duty != nil {
			env.leases[0].duties = append(env.leases[0].duties, p.duty)
		}
		for i, d := range p.duties {
			if d != nil {
				env.leases[i].duties = append(env.leases[i].duties, d)
			}
		}
		if p.background != nil {
			sc.Background = append(sc.Background, p.background)
		}
		if p.preflight != nil {
			preflights = append(preflights, p.preflight)
		}
		if p.forward != nil {
			sc.Forward = p.forward
		}
		sc.Servers = append(sc.Servers, p.servers...)
	}
	sc.Startup = func(ctx context.Context) error { return o.waitForStore(ctx, sts, preflights) }

	which := []any{"lease", sts[0].String(), "identity", o.identity, "instance", env.elector.Instance()}
	if len(env.leases) > 1 {
		leases, instances := make([]string, len(env.leases)), make([]string, len(env.leases))
		for i, c := range env.leases {
			leases[i], instances[i] = c.store.String(), c.elector.Instance()
		}
		which = []any{"leases", leases, "identity", o.identity, "instances", instances}
	}
	log.Info("incumbent starting", append(which,
		"version", version(o.env.Version), "lease_duration", o.leaseDuration, "renew_deadline", o.renewDeadline,
		"retry_period", o.retryPeriod, "renew_interval", cmp.Or(o.renewInterval, o.retryPeriod), "grace", o.grace, "command", o.command, "leader_addr", o.leaderAddr,
		"label_pod", o.labelPod, "events", o.events, "await_app", o.awaitApp, "health_check", o.healthSummary(),
		"on_refused", o.onRefused)...)
	code, err := sc.Run(ctx)
	wctx, cancel := context.WithTimeout(context.Background(), eventsDrain)
	o.refusals.wait(wctx)
	cancel()
	var se *sidecar.StartupError
	switch {
	case err != nil && (errors.Is(err, store.ErrPermission) || isMissingPermission(err)):
		return permissionDenied(err)
	case errors.As(err, &se):
		return failure(se.Err) // a usage error inside keeps its exit code 2
	case err != nil:
		return failure(err)
	}
	log.Info("incumbent stopped", "exit_code", code)
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}

// podClientQPS is the request rate of the pod modes' client of a sidecar
// that holds several leases.
const podClientQPS = 20

// kubeClient returns a function that makes the Kubernetes client of the
// pod modes once, on first use.
func (o *runOptions) kubeClient() func() (*kubeclient.Client, error) {
	var once sync.Once
	var kc *kubeclient.Client
	var err error
	return func() (*kubeclient.Client, error) {
		once.Do(func() {
			if o.rest == nil {
				err = fmt.Errorf("no Kubernetes client configuration")
				return
			}
			cfg := o.rest
			if n := len(o.leaseNames()); n > 1 {
				// Each lease records its own events (and may read the pod's
				// UID once): client-go's default of 5 requests a second, in
				// bursts of 10, would lose most of them when a few dozen
				// leases are won at once.
				cfg = rest.CopyConfig(o.rest)
				cfg.QPS, cfg.Burst = podClientQPS, 2*n+rest.DefaultBurst
			}
			kc, err = kubeclient.New(cfg)
		})
		return kc, err
	}
}
