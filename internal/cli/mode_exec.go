package cli

import (
	"github.com/spf13/pflag"

	"github.com/incumbent-io/incumbent/internal/supervise"
)

// The exec mode: the command after -- runs as a child only while leading,
// with its fencing token in INCUMBENT_TERM; on step-down it gets SIGTERM,
// then SIGKILL shortly before --grace ends, and the lease is released only
// once it is gone.
var execMode = mode{
	name: "exec",
	flags: func(fs *pflag.FlagSet, o *runOptions) {
		fs.StringVar(&o.onChildExit, "on-child-exit", string(supervise.Release), "when the child exits on its own while leading: release (step down, let another replica run it), restart (run it again in this term) or exit (step down and exit with its code)")
	},
	on:       func(o *runOptions) bool { return len(o.command) > 0 },
	oneLease: "a command after -- (exec mode) is one workload, run only while one lease is held",
	check: func(o *runOptions) error {
		policy, err := supervise.ParsePolicy(o.onChildExit)
		if err != nil {
			return usagef("--on-child-exit: %v", err)
		}
		o.policy = policy
		return nil
	},
	build: func(o *runOptions, env *modeEnv) (part, error) {
		sup, err := supervise.New(supervise.Config{Command: o.command, Lease: o.lease, Namespace: o.namespace,
			Grace: o.grace, OnExit: o.policy, Exit: env.stop, Logger: env.log})
		if err != nil {
			return part{}, usage(err)
		}
		return part{duty: sup, forward: sup.Signal}, nil
	},
}
