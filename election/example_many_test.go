package election_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/store/kube"
)

// One process campaigns in many elections, one Lease per shard: their
// stores share one connection and one watch of the namespace's Leases
// through one kube.Client, and each election keeps its own rate limiter,
// timeouts and renewals. Every replica runs the same code with its own
// identity; each shard is led by exactly one of them.
func Example_manyElections() {
	cfg := env.Config // the replica's *rest.Config, e.g. from rest.InClusterConfig()
	client, err := kube.NewClient(cfg, kube.ClientOptions{UserAgent: "my-controller"})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var mu sync.Mutex
	var mine []string
	var leading sync.WaitGroup
	var running sync.WaitGroup
	for shard := range 4 {
		st, err := client.Store("default", fmt.Sprintf("example-shard-%d", shard))
		if err != nil {
			fmt.Println(err)
			return
		}
		leading.Add(1)
		e, err := election.New(election.Config{
			Store:    st,
			Identity: "replica-a",
			Logger:   slog.New(slog.DiscardHandler),
			Lead: func(term *election.Term) {
				mu.Lock()
				mine = append(mine, st.Name())
				mu.Unlock()
				leading.Done()
				<-term.Done() // ... work on the shard until the term ends
			},
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		running.Go(func() { _ = e.Run(ctx) })
	}
	leading.Wait() // alone, this replica leads every shard
	slices.Sort(mine)
	fmt.Println("leading", mine)
	stop()
	running.Wait() // each term ended and each lease was released
	// Output:
	// leading [example-shard-0 example-shard-1 example-shard-2 example-shard-3]
}
