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
	// HolderChanged is called when the observed holder changes; holder is
	// empty when the lease is free or gone.
	HolderChanged(holder string, transitions int64)
}

type nopMetrics struct{}

func (nopMetrics) Leading(bool)                  {}
func (nopMetrics) Acquired(int64, time.Duration) {}
func (nopMetrics) Renewed(time.Duration, error)  {}
func (nopMetrics) HolderChanged(string, int64)   {}
