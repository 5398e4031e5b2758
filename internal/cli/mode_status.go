package cli

import (
	"net"

	"github.com/spf13/pflag"

	"github.com/incumbent-io/incumbent/internal/sidecar"
	"github.com/incumbent-io/incumbent/internal/statusapi"
)

// DefaultHTTPAddr is where the status API listens unless told otherwise.
const DefaultHTTPAddr = "127.0.0.1:4040"

// The status API mode: the application asks the sidecar whether it leads
// (/v1/status, /v1/watch, the contrib-compatible /), and probes ask whether
// the sidecar is healthy (/healthz, /readyz). Beside it, on loopback only,
// the control endpoint takes the application's acknowledgement that it
// stopped acting (POST /v1/stepped-down) and a terminating pod's withdrawal
// (POST /v1/withdraw, from `incumbent withdraw` in a preStop hook). Unless
// the sidecar runs the work itself (a command after --), it cannot see the
// application stop: each term's end holds the release for --grace or until
// the application acknowledges (--await-app).
var statusAPIMode = mode{
	name: "status API",
	flags: func(fs *pflag.FlagSet, o *runOptions) {
		fs.StringVar(&o.httpAddr, "http-addr", DefaultHTTPAddr, "address of the status API; empty to disable")
		fs.StringVar(&o.controlAddr, "control-addr", "", "address of the control endpoint (acknowledgements, withdraw): a loopback address, or unix:PATH; empty to disable (default: "+DefaultControlAddr+" inside a pod, i.e. when KUBERNETES_SERVICE_HOST is set, else none, so that processes of one machine do not clash)")
		fs.BoolVar(&o.awaitApp, "await-app", false, "hold the release of each term for --grace, or until the application says it stopped (POST /v1/stepped-down on --control-addr); default: on without a command, off with one (the child's exit is the signal)")
	},
	on: func(o *runOptions) bool { return o.httpAddr != "" || o.controlAddr != "" || o.awaitApp },
	check: func(o *runOptions) error {
		if o.httpAddr != "" {
			if _, _, err := net.SplitHostPort(o.httpAddr); err != nil {
				return usagef("invalid --http-addr %q: %v", o.httpAddr, err)
			}
		}
		if o.httpAddr != "" && o.httpAddr == o.leaderAddr {
			return usagef("--http-addr and --leader-addr must differ (both %q)", o.httpAddr)
		}
		if err := checkControlAddr(o.controlAddr); err != nil {
			return usage(err)
		}
		switch {
		case !o.awaitAppSet:
			// Only an application that can learn of leadership can be
			// waited for.
			o.awaitApp = len(o.command) == 0 && (o.httpAddr != "" || o.controlAddr != "")
		case o.awaitApp && len(o.command) > 0:
			return usagef("--await-app is for an application beside the sidecar; with a command, the sidecar waits for the child itself")
		}
		return nil
	},
	build: func(o *runOptions, env *modeEnv) (part, error) {
		var p part
		// One status view per lease; with several, each has its per-lease
		// paths, and the paths of one election refuse (statusapi).
		elections := make([]statusapi.Election, len(env.leases))
		for i, c := range env.leases {
			elections[i] = statusapi.Election{Lease: c.name, Source: c.elector}
		}
		if o.awaitApp {
			p.duties = make([]sidecar.Duty, len(env.leases))
			for i, c := range env.leases {
				grace := sidecar.NewAppGrace(o.grace, c.elector.Status, c.log)
				if len(env.leases) > 1 {
					grace.AckPath = "/v1/leases/" + c.name + "/stepped-down"
				}
				p.duties[i] = grace
				elections[i].Acknowledge = grace.Ack
			}
		}
		if o.httpAddr != "" {
			ln, err := net.Listen("tcp", o.httpAddr)
			if err != nil {
				return part{}, failuref("status API: %w", err)
			}
			h, err := statusapi.New(statusapi.Options{Elections: elections, Namespace: o.namespace,
				Metrics: env.metrics.Handler(), Grace: o.grace, Startup: o.startup, Logger: env.log})
			if err != nil {
				ln.Close()
				return part{}, failure(err)
			}
			env.log.Info("status API listening", "addr", ln.Addr().String())
			p.servers = append(p.servers, sidecar.Server{Name: "status API", Listener: ln, Handler: h})
		}
		if o.controlAddr != "" {
			ln, err := listenControl(o.controlAddr)
			if err != nil {
				for _, s := range p.servers {
					s.Listener.Close()
				}
				return part{}, failuref("control endpoint (--control-addr, INCUMBENT_CONTROL_ADDR): %w; give each sidecar sharing a network namespace its own address, or empty to disable", err)
			}
			h, err := statusapi.NewControl(statusapi.ControlOptions{Elections: elections, Namespace: o.namespace,
				Withdraw: env.withdraw, Pod: o.pod, Grace: o.grace, Startup: o.startup, Logger: env.log})
			if err != nil {
				ln.Close()
				return part{}, failure(err)
			}
			env.log.Info("control endpoint listening", "addr", ln.Addr().String())
			p.servers = append(p.servers, sidecar.Server{Name: "control endpoint", Listener: ln, Handler: h})
		}
		return p, nil
	},
}
