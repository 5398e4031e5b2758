package cli

import (
	"net"

	"github.com/spf13/pflag"

	"github.com/incumbent-io/incumbent/internal/leaderport"
)

// The leader-only port mode: a port open only while leading, for a
// readinessProbe (only the leader is Ready). See docs/sidecar.md for what
// this costs in rollouts, and prefer pod labels for routing.
var leaderPortMode = mode{
	name: "leader port",
	flags: func(fs *pflag.FlagSet, o *runOptions) {
		fs.StringVar(&o.leaderAddr, "leader-addr", "", "address of a port open only while leading, e.g. :8080")
	},
	on:       func(o *runOptions) bool { return o.leaderAddr != "" },
	oneLease: "--leader-addr is one port, open while one lease is held",
	check: func(o *runOptions) error {
		if _, _, err := net.SplitHostPort(o.leaderAddr); err != nil {
			return usagef("invalid --leader-addr %q: %v", o.leaderAddr, err)
		}
		return nil
	},
	build: func(o *runOptions, env *modeEnv) (part, error) {
		p, err := leaderport.New(o.leaderAddr, env.log)
		if err != nil {
			return part{}, failure(err)
		}
		return part{duty: p}, nil
	},
}
