package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/store"
)

type requestOptions struct {
	common
	to   string
	wait time.Duration
}

func newReleaseCmd(e *Env) *cobra.Command {
	o := &requestOptions{common: common{env: e, name: "release"}}
	cmd := &cobra.Command{
		Use:   "release --lease NAME [-n NAMESPACE] [--wait DURATION]",
		Short: "Ask the current leader to step down and release the lease",
		Long: `Write the incumbent.io/release-requested annotation on the lease with a compare-and-set.
The leader sees it at once (it watches the lease), stops its work, and releases the lease;
another candidate takes it right away. The former leader holds back for one lease duration
before it campaigns again, so that any other candidate (even a polling client-go one) goes
first; once another candidate has held the lease, that hold-back is over. Only incumbent candidates honour the request (client-go ones ignore it).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return o.run(cmd.Context(), cmd.OutOrStdout(), false) },
	}
	o.common.addFlags(cmd.Flags())
	cmd.Flags().DurationVar(&o.wait, "wait", 0, "wait up to this long for the holder to change (0: return once the request is written)")
	annotateEnv(cmd.Flags())
	return cmd
}

func newTransferCmd(e *Env) *cobra.Command {
	o := &requestOptions{common: common{env: e, name: "transfer"}}
	cmd := &cobra.Command{
		Use:   "transfer --lease NAME --to IDENTITY [-n NAMESPACE] [--wait DURATION]",
		Short: "Ask the current leader to hand the lease to a named candidate",
		Long: `Write the incumbent.io/transfer-to annotation on the lease with a compare-and-set. The
leader stops its work and releases the lease reserved for IDENTITY, which takes it at once;
other incumbent candidates hold back for one lease duration, so if IDENTITY is not running
the lease is free again after that.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return o.run(cmd.Context(), cmd.OutOrStdout(), true) },
	}
	o.common.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&o.to, "to", "", "identity of the candidate to hand the lease to; required")
	cmd.Flags().DurationVar(&o.wait, "wait", 0, "wait up to this long for IDENTITY to hold the lease (0: return once the request is written)")
	annotateEnv(cmd.Flags())
	return cmd
}

func (o *requestOptions) run(ctx context.Context, out io.Writer, transfer bool) error {
	if transfer && o.to == "" {
		return usagef("--to is required")
	}
	if o.wait < 0 {
		return usagef("--wait must not be negative, got %v", o.wait)
	}
	if err := o.setup(); err != nil {
		return err
	}
	st, err := o.openStore(ctx)
	if err != nil {
		return failure(err)
	}
	asked, err := o.request(ctx, st, transfer)
	if err != nil {
		return failure(err)
	}
	what := "release"
	if transfer {
		what = "transfer to " + o.to
	}
	fmt.Fprintf(out, "asked %s (term %d) for a %s of %s\n", asked.Holder, asked.Term, what, st)
	if asked.Instance == "" {
		o.logger.Warn("the holder wrote no incumbent instance marker: it may not be an incumbent candidate, and may ignore the request",
			"holder", asked.Holder)
	}
	if o.wait == 0 {
		return nil
	}
	return failure(o.await(ctx, st, out, asked, transfer))
}

// request writes the annotation with a compare-and-set, re-reading on
// conflict.
func (o *requestOptions) request(ctx context.Context, st store.Store, transfer bool) (store.Record, error) {
	for attempt := 0; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		rec, err := st.Get(rctx)
		if err != nil {
			cancel()
			return store.Record{}, err
		}
		if !rec.Held() {
			cancel()
			return store.Record{}, fmt.Errorf("%s is not held by anyone: there is no leader to ask", st)
		}
		if transfer && rec.Holder == o.to {
			cancel()
			return store.Record{}, fmt.Errorf("%s is already held by %q", st, o.to)
		}
		if transfer {
			rec.TransferTo = o.to
		} else {
			rec.ReleaseRequested = true
		}
		got, err := st.Update(rctx, rec)
		cancel()
		switch {
		case err == nil:
			return got, nil
		case errors.Is(err, store.ErrConflict) && attempt < 4:
			continue // renewed in between: read again
		default:
			return store.Record{}, err
		}
	}
}

// await follows the lease until the request took effect, or o.wait passes.
func (o *requestOptions) await(ctx context.Context, st store.Store, out io.Writer, asked store.Record, transfer bool) error {
	ctx, cancel := context.WithTimeout(ctx, o.wait)
	defer cancel()
	obs := election.NewObserver(st, 0, o.logger)
	statuses, stop := obs.Subscribe()
	defer stop()
	failed := make(chan error, 1)
	go func() { failed <- obs.Run(ctx) }()
	for {
		select {
		case err := <-failed:
			if err != nil {
				return err
			}
			return fmt.Errorf("the request was not honoured within --wait %v", o.wait)
		case s := <-statuses:
			if !s.Known || (s.Leader == asked.Holder && s.Term == asked.Term) {
				continue // still the term that was asked
			}
			if transfer && s.Leader != o.to {
				continue
			}
			leader := s.Leader
			if leader == "" {
				leader = "<none>"
			}
			fmt.Fprintf(out, "now held by %s (term %d)\n", leader, s.Term)
			if !transfer && s.Leader == "" {
				continue // released: wait for the next holder
			}
			return nil
		}
	}
}
