package election

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/incumbent-io/incumbent/store"
)

// Default timings: the values the Kubernetes control-plane components use.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
	DefaultGrace         = 4 * time.Second
	DefaultDrift         = 0.01
)

// Config describes one candidate in one election. The zero value of each
// timing field means its default; Validate rejects combinations that cannot
// keep leadership exclusive.
type Config struct {
	// Store keeps the election's record. Required.
	Store store.Store
	// Identity names this candidate in the record, for example the pod name.
	// Required. Two processes with the same identity are told apart by a
	// random instance marker and never both lead.
	Identity string

	// LeaseDuration is how long followers wait, after they last saw the
	// record change, before they take it over. Default 15s.
	LeaseDuration time.Duration
	// RenewDeadline is how long a leader keeps acting without a successful
	// renewal, counted from when it sent the last renewal that succeeded.
	// At that moment the term's context is cancelled. Default 10s.
	RenewDeadline time.Duration
	// RetryPeriod is the interval between attempts after a renewal failed,
	// between reads of the record while the watch is down, and between
	// acquisition attempts that failed. Default 2s.
	RetryPeriod time.Duration
	// RenewInterval is how often a leader renews while its renewals
	// succeed, counted from when the last one was sent. Default
	// RetryPeriod. A longer interval means fewer writes (at scale, the
	// leaders' renewals are nearly all of the lease traffic, since idle
	// followers send nothing), but fewer chances to renew before the renew
	// deadline: after a renewal succeeds, the next attempt is made
	// RenewInterval later and, if it fails, retried every RetryPeriod until
	// the deadline, so Validate requires RenewInterval + RetryPeriod <=
	// RenewDeadline (at least two attempts). A leader's authority is counted
	// from its last successful renewal, so the interval never lengthens a
	// term beyond RenewDeadline; it only makes a leader that cannot reach
	// the store step down after fewer tries. Kubernetes' node leases make
	// the same trade: the kubelet renews its 40s lease every 10s.
	RenewInterval time.Duration
	// Grace is how long the leader's work may take to stop once its term's
	// context is cancelled. Default 4s.
	Grace time.Duration
	// Drift bounds the relative difference between the clock rates of any two
	// candidates. Default 0.01 (1%).
	Drift float64

	// Health, when set, gates candidacy on the work's health: see Health.
	Health *Health

	// Lead is called, in its own goroutine, at the start of every term this
	// candidate wins. It must stop acting and return within Grace once
	// term.Context() is done. The lease is released only after it returns.
	// If it returns while the term is still valid, the candidate resigns.
	// When nil, terms simply last until they end.
	Lead func(term *Term)

	// Clock is where the elector reads the time and sets its timers.
	// Default: the system's monotonic clock. Tests replace it.
	Clock Clock

	// Logger receives the elector's logs. Default slog.Default().
	Logger *slog.Logger
	// Metrics receives leader-side measurements. Default: none.
	Metrics Metrics
}

// withDefaults returns c with every zero timing field set to its default.
func (c Config) withDefaults() Config {
	if c.LeaseDuration == 0 {
		c.LeaseDuration = DefaultLeaseDuration
	}
	if c.RenewDeadline == 0 {
		c.RenewDeadline = DefaultRenewDeadline
	}
	if c.RetryPeriod == 0 {
		c.RetryPeriod = DefaultRetryPeriod
	}
	if c.RenewInterval == 0 {
		c.RenewInterval = c.RetryPeriod
	}
	if c.Grace == 0 {
		c.Grace = DefaultGrace
	}
	if c.Drift == 0 {
		c.Drift = DefaultDrift
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	if c.Metrics == nil {
		c.Metrics = nopMetrics{}
	}
	return c
}

// ErrInvalidConfig is wrapped by every error Validate returns.
var ErrInvalidConfig = errors.New("invalid election config")

// Validate checks c, after defaults are applied, against the rules that keep
// leadership exclusive:
//
//	(renewDeadline + grace)*(1+drift) < leaseDuration*(1-drift)
//	retryPeriod <= renewDeadline/2
//	renewInterval + retryPeriod <= renewDeadline
//
// The first makes a leader's work stop, by its own clock, before any
// follower's clock can say that the lease expired: both the renew deadline
// and the grace run on the leader's clock, the lease duration on the
// follower's. The other two leave room for at least two renewal attempts
// before the deadline. Each error names the field and the rule it breaks.
func (c Config) Validate() error {
	c = c.withDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Store == nil:
		return bad("Store is required")
	case c.Identity == "":
		return bad("Identity must not be empty")
	case len(c.Identity) > 253:
		return bad("Identity must be at most 253 characters, got %d", len(c.Identity))
	case c.LeaseDuration < 0:
		return bad("LeaseDuration must be positive, got %v", c.LeaseDuration)
	case c.RenewDeadline < 0:
		return bad("RenewDeadline must be positive, got %v", c.RenewDeadline)
	case c.RetryPeriod < 0:
		return bad("RetryPeriod must be positive, got %v", c.RetryPeriod)
	case c.RenewInterval < 0:
		return bad("RenewInterval must be positive, got %v", c.RenewInterval)
	case c.Grace < 0:
		return bad("Grace must be positive, got %v", c.Grace)
	case c.Drift < 0 || c.Drift >= 0.5:
		return bad("Drift must be in [0, 0.5), got %v", c.Drift)
	case 2*c.RetryPeriod > c.RenewDeadline:
		return bad("RetryPeriod (%v) must be at most half of RenewDeadline (%v)", c.RetryPeriod, c.RenewDeadline)
	case c.RenewInterval+c.RetryPeriod > c.RenewDeadline:
		return bad("RenewInterval (%v) plus RetryPeriod (%v) must be at most RenewDeadline (%v), so that a failed renewal is retried at least once before the deadline: RenewInterval can be at most %v",
			c.RenewInterval, c.RetryPeriod, c.RenewDeadline, c.RenewDeadline-c.RetryPeriod)
	}
	if c.Health != nil {
		if err := c.Health.withDefaults().validate(); err != nil {
			return bad("%v", err)
		}
	}
	hold := time.Duration(float64(c.RenewDeadline+c.Grace) * (1 + c.Drift))
	wait := time.Duration(float64(c.LeaseDuration) * (1 - c.Drift))
	if hold >= wait {
		return bad("(RenewDeadline + Grace)*(1+Drift) (%v) must be less than LeaseDuration*(1-Drift) (%v): with RenewDeadline %v, Grace %v, Drift %v, LeaseDuration must exceed %v",
			hold, wait, c.RenewDeadline, c.Grace, c.Drift, time.Duration(float64(hold)/(1-c.Drift)).Round(time.Millisecond))
	}
	return nil
}
