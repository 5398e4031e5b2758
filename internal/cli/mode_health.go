package cli

import (
	"context"

	"github.com/spf13/pflag"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/internal/healthcheck"
)

// The health mode: the workload's own health gates candidacy. A candidate
// campaigns only while its check passes; a leader whose check fails
// --health-failure-threshold times in a row steps down (the work stops, gets
// its grace, the lease is released) and holds back until it passes
// --health-success-threshold times in a row. With a command (exec mode) the
// workload runs only while leading, so only the leader is checked. The
// sidecar's own /healthz is not affected: it stays about the sidecar. With
// several leases the check is one gate for all of them: the workload is
// checked once per period, and every lease's candidate judges the same
// answers, so a broken workload leads none.
var healthMode = mode{
	name: "health",
	flags: func(fs *pflag.FlagSet, o *runOptions) {
		fs.StringVar(&o.healthURL, "health-url", "", "the workload's health check: GET this URL, healthy on 2xx")
		fs.StringVar(&o.healthExec, "health-exec", "", `the workload's health check: run this command (split like a shell would, but run without one; use "sh -c '...'" for shell syntax), healthy on exit 0`)
		fs.DurationVar(&o.healthPeriod, "health-period", election.DefaultHealthPeriod, "interval between health checks")
		fs.DurationVar(&o.healthTimeout, "health-timeout", election.DefaultHealthTimeout, "bound of each health check; a check that takes longer fails")
		fs.IntVar(&o.healthFailures, "health-failure-threshold", election.DefaultHealthFailureThreshold, "failed checks in a row after which a candidate stops campaigning, and a leader steps down")
		fs.IntVar(&o.healthSuccesses, "health-success-threshold", election.DefaultHealthSuccessThreshold, "passed checks in a row after which an unhealthy candidate campaigns again")
	},
	on: func(o *runOptions) bool { return o.healthURL != "" || o.healthExec != "" },
	check: func(o *runOptions) error {
		switch {
		case o.healthURL != "" && o.healthExec != "":
			return usagef("--health-url and --health-exec are one check or the other, not both")
		case o.healthPeriod <= 0 || o.healthTimeout <= 0:
			return usagef("--health-period and --health-timeout must be positive, got %v and %v", o.healthPeriod, o.healthTimeout)
		case o.healthTimeout > o.healthPeriod:
			return usagef("--health-timeout (%v) must not exceed --health-period (%v)", o.healthTimeout, o.healthPeriod)
		case o.healthFailures < 1 || o.healthSuccesses < 1:
			return usagef("--health-failure-threshold and --health-success-threshold must be at least 1, got %d and %d", o.healthFailures, o.healthSuccesses)
		}
		var check func(ctx context.Context) error
		var err error
		if o.healthURL != "" {
			check, err = healthcheck.HTTP(o.healthURL)
		} else {
			var argv []string
			if argv, err = healthcheck.Split(o.healthExec); err == nil {
				check, err = healthcheck.Exec(argv)
			}
		}
		if err != nil {
			return usagef("--health-%s: %v", map[bool]string{true: "url", false: "exec"}[o.healthURL != ""], err)
		}
		if len(o.leaseNames()) > 1 {
			check = healthcheck.Shared(check, o.healthPeriod/2, o.healthTimeout)
		}
		o.health = &election.Health{Check: check, Period: o.healthPeriod, Timeout: o.healthTimeout,
			FailureThreshold: o.healthFailures, SuccessThreshold: o.healthSuccesses, OnlyWhileLeading: len(o.command) > 0}
		return nil
	},
	configure: func(o *runOptions, cfg *election.Config) { cfg.Health = o.health },
	build:     func(o *runOptions, env *modeEnv) (part, error) { return part{}, nil },
}

// healthSummary describes the check for the start-up log.
func (o *runOptions) healthSummary() string {
	switch {
	case o.healthURL != "":
		return "GET " + o.healthURL
	case o.healthExec != "":
		return o.healthExec
	}
	return ""
}
