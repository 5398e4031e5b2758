package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/internal/statusapi"
)

type watchOptions struct {
	common
	output string
}

func newWatchCmd(e *Env) *cobra.Command {
	o := &watchOptions{common: common{env: e, name: "watch"}}
	cmd := &cobra.Command{
		Use:   "watch --lease NAME [-n NAMESPACE] [-o table|json]",
		Short: "Print the lease's leader now and at every change, until interrupted",
		Long: `Follow the election without campaigning: one line now, then one per change of leader or term.
It costs one watch on the lease (reads every two seconds only while the watch is down).
With -o json each line is the JSON document of the status API's /v1/status.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return o.run(cmd.Context(), cmd.OutOrStdout()) },
	}
	o.common.addFlags(cmd.Flags())
	cmd.Flags().StringVarP(&o.output, "output", "o", "table", "output format: table or json (one document per line)")
	annotateEnv(cmd.Flags())
	return cmd
}

func (o *watchOptions) run(ctx context.Context, out io.Writer) error {
	if o.output != "table" && o.output != "json" {
		return usagef("invalid --output %q: want table or json", o.output)
	}
	if err := o.setup(); err != nil {
		return err
	}
	st, err := o.openStore(ctx)
	if err != nil {
		return failure(err)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	obs := election.NewObserver(st, 0, o.logger)
	statuses, cancel := obs.Subscribe()
	defer cancel()
	failed := make(chan error, 1)
	go func() { failed <- obs.Run(ctx) }()
	if o.output == "table" {
		fmt.Fprintln(out, "TIME                  LEADER  TERM")
	}
	for {
		select {
		case err := <-failed:
			if err != nil {
				return failure(err)
			}
			return nil
		case s := <-statuses:
			if !s.Known {
				continue
			}
			if err := o.print(out, s); err != nil {
				return failure(err)
			}
		}
	}
}

func (o *watchOptions) print(out io.Writer, s election.Status) error {
	if o.output == "json" {
		b, err := json.Marshal(statusapi.ViewOf(s, o.lease, o.namespace, 0))
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "%s\n", b)
		return err
	}
	leader := s.Leader
	if leader == "" {
		leader = "<none>"
	}
	_, err := fmt.Fprintf(out, "%s  %s  %d\n", time.Now().UTC().Format(time.RFC3339), leader, s.Term)
	return err
}
