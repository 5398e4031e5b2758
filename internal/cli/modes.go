package cli

import (
	"context"
	"log/slog"
	"os"

	"github.com/spf13/pflag"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/internal/kubeclient"
	"github.com/incumbent-io/incumbent/internal/metrics"
	"github.com/incumbent-io/incumbent/internal/rbac"
	"github.com/incumbent-io/incumbent/internal/sidecar"
	"github.com/incumbent-io/incumbent/store"
)

// mode is one thing `incumbent run` does beside campaigning: the status API,
// the leader-only port, running a child, pod labels, events. Each is defined
// in a file of its own (mode_*.go) and listed in runModes; a new mode is one
// new file and one line there.
type mode struct {
	// name names the mode in errors and logs.
	name string
	// flags registers the mode's flags on run's flag set.
	flags func(fs *pflag.FlagSet, o *runOptions)
	// on reports whether the flags ask for the mode.
	on func(o *runOptions) bool
	// check validates the mode's flags (no network); nil when there is
	// nothing to check.
	check func(o *runOptions) error
	// oneLease, for a mode that acts on one workload, names what asks for
	// it ("--label-pod") and why that is one lease's: the mode refuses
	// several leases (run --lease a,b,c). Empty: the mode serves any
	// number of leases.
	oneLease string
	// rbac adds the permissions the mode needs (Kubernetes only); nil when
	// it needs none beyond the lease's.
	rbac func(r *rbac.Options)
	// configure adds the mode's settings to the election's configuration,
	// before the elector is made; nil when it has none.
	configure func(o *runOptions, cfg *election.Config)
	// build makes the mode's part of the sidecar. It makes no network call.
	build func(o *runOptions, env *modeEnv) (part, error)
}

// modeEnv is what the modes are built from.
type modeEnv struct {
	log *slog.Logger
	// leases are the sidecar's leases, in the order given; most sidecars
	// hold one. store, metrics and elector are the first's: the one lease
	// of a mode that refuses several (the first's metrics serve every
	// lease's series).
	leases  []*candidacy
	store   store.Store
	metrics *metrics.Metrics
	kube    func() (*kubeclient.Client, error) // the Kubernetes client, made on first use
	// elector is set once the elector exists, before any part runs.
	elector *election.Elector
	// stop ends the sidecar with an exit code (a child's, under
	// --on-child-exit=exit).
	stop func(code int)
	// withdraw withdraws every lease's elector.
	withdraw func()
}

// candidacy is one lease of the sidecar: its store, metrics, elector and
// the modes' work inside its terms.
type candidacy struct {
	name    string // as --lease gives it
	store   store.Store
	metrics *metrics.Metrics
	// log is the sidecar's logger, naming the lease when there are several.
	log     *slog.Logger
	elector *election.Elector
	duties  []sidecar.Duty
}

// part is what a mode adds to the sidecar; every field is optional.
type part struct {
	// duty is the mode's work inside each term of the one lease (a mode
	// that refuses several).
	duty sidecar.Duty
	// duties are the mode's work inside each term, by lease: duties[i] is
	// env.leases[i]'s (nil: none).
	duties []sidecar.Duty
	// background runs from before the elector starts until after it has
	// returned.
	background func(ctx context.Context)
	// preflight is checked at startup, retried until it passes; an error
	// wrapping store.ErrPermission or rbac.ErrMissing (or carrying exit
	// code 3) is a refused permission, which ends startup only under
	// --on-refused=exit.
	preflight func(ctx context.Context) error
	// servers are served from the first moment.
	servers []sidecar.Server
	// forward receives the signals the sidecar forwards.
	forward func(os.Signal) error
}

// runModes lists run's modes. They are built in this order; the status
// API's comes last, since it opens its ports at once, so that an invalid
// invocation fails before anything listens.
func runModes() []mode {
	return []mode{healthMode, leaderPortMode, execMode, podLabelMode, eventsMode, statusAPIMode}
}
