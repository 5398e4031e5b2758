package sidecar

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Named is one elector of a sidecar that holds several leases, with the
// name of its lease.
type Named struct {
	Lease   string
	Elector Elector
}

// All returns one Elector that runs every elector of es at once, as a
// sidecar that holds several leases (run --lease a,b,c) does: its Run
// returns once every one has returned, that is once each has ended its
// term, waited for its work and released its lease. When one fails, the
// others are stopped too, as at the end of ctx, and Run returns the
// failures, each naming its lease.
func All(es ...Named) Elector { return all(es) }

type all []Named

func (es all) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, e := range es {
		wg.Go(func() {
			err := e.Elector.Run(ctx)
			if err == nil {
				return
			}
			err = fmt.Errorf("lease %s: %w", e.Lease, err)
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			cancel(fmt.Errorf("the election of another lease of this sidecar failed: %w", err))
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
