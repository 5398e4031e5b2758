package election_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/store/memory"
)

// A candidate campaigns, does its work inside the term, and steps down.
func Example() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()

	e, err := election.New(election.Config{
		Store:    memory.New("example"), // store/kube.New for a Kubernetes Lease
		Identity: "replica-a",
		Lead: func(term *election.Term) {
			fmt.Println("leading with fencing token", term.Token())
			// ... act, passing term.Token() to the resources written, and
			// stop when the term ends:
			select {
			case <-term.Done():
			case <-time.After(10 * time.Millisecond):
				term.Resign() // done for now: hand the lease to someone else
			}
			fmt.Println("stepped down:", term.Err())
			stop()
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := e.Run(ctx); err != nil {
		fmt.Println(err)
	}
	// Output:
	// leading with fencing token 1
	// stepped down: leader resigned
}

// Validate explains which rule a configuration breaks.
func ExampleConfig_Validate() {
	err := election.Config{
		Store:         memory.New("example"),
		Identity:      "replica-a",
		LeaseDuration: 10 * time.Second,
		RenewDeadline: 8 * time.Second,
		Grace:         4 * time.Second,
	}.Validate()
	fmt.Println(err)
	// Output:
	// invalid election config: (RenewDeadline + Grace)*(1+Drift) (12.12s) must be less than LeaseDuration*(1-Drift) (9.9s): with RenewDeadline 8s, Grace 4s, Drift 0.01, LeaseDuration must exceed 12.242s
}

// A candidate whose workload is unhealthy does not campaign, and a leader
// whose check keeps failing steps down (Config.Health).
func ExampleHealth() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var broken atomic.Bool // stands for the workload's own health endpoint
	e, err := election.New(election.Config{
		Store:    memory.New("example-health"),
		Identity: "replica-a",
		Health: &election.Health{
			Check: func(ctx context.Context) error {
				if broken.Load() {
					return errors.New("database unreachable")
				}
				return nil
			},
			Period: 10 * time.Millisecond, Timeout: 5 * time.Millisecond,
			FailureThreshold: 1, SuccessThreshold: 1,
		},
		Lead: func(term *election.Term) {
			fmt.Println("leading")
			broken.Store(true) // the workload breaks
			<-term.Done()
			fmt.Println("stepped down:", errors.Is(term.Err(), election.ErrUnhealthy))
			stop()
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := e.Run(ctx); err != nil {
		fmt.Println(err)
	}
	// Output:
	// leading
	// stepped down: true
}
