package election

import "time"

// Metrics receives measurements from an Elector. Implementations must be
// safe for concurrent use and must not block. The elector registers nothing
// globally; the caller decides where numbers go (the incumbent binary exports
// them to Prometheus).
type Metrics interface {
	// Leading is called with true when a term starts and false when it ends.
	Leading(bool)
	// Acquired is called after a successful acquisition, with the new fencing
	// token and how long the winning write took.
	Acquired(token int64, took time.Duration)
	// Renewed is called after every renewal attempt, with its duration and
	// its error (nil on success).
	Renewed(took time.Duration, err error)
	// HolderChanged is called when the observed holder, or the token it
	// recorded for its term, changes; holder is empty when the lease is free
	// or gone, term is zero when the holder has not recorded it (yet).
	HolderChanged(holder string, term int64)
	// Watching is called with true when a watch of the record is
	// established, and with false when it ends or cannot be established
	// (err says why; nil when a watch simply ended). While no watch runs,
	// the record is polled every retry period.
	Watching(watching bool, err error)
	// Healthy is called when the verdict of Config.Health changes: false,
	// with the reason, when the candidate stops campaigning for it.
	Healthy(healthy bool, reason string)
}

type nopMetrics struct{}

func (nopMetrics) Leading(bool)                  {}
func (nopMetrics) Acquired(int64, time.Duration) {}
func (nopMetrics) Renewed(time.Duration, error)  {}
func (nopMetrics) HolderChanged(string, int64)   {}
func (nopMetrics) Watching(bool, error)          {}
func (nopMetrics) Healthy(bool, string)          {}
