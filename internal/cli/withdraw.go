package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/internal/statusapi"
)

type withdrawOptions struct {
	env         *Env
	controlAddr string
	timeout     time.Duration
}

// withdrawPoll is how often withdraw reads the sidecar's status while the
// step-down goes on.
const withdrawPoll = 50 * time.Millisecond

func newWithdrawCmd(e *Env) *cobra.Command {
	o := &withdrawOptions{env: e}
	cmd := &cobra.Command{
		Use:   "withdraw [--control-addr ADDR] [--timeout DURATION]",
		Short: "Tell the sidecar beside you to step down at once and never campaign again (a preStop hook)",
		Long: `Ask the incumbent sidecar of this pod, on its control endpoint, to withdraw from the election:
a term in progress ends at once (a status-API application is told, gets its grace, then the
lease is released; a child is stopped first), and the sidecar never campaigns again while it
runs. It returns once the lease is released (or was not held), or after --timeout. A
sidecar of several leases withdraws from every one, and withdraw waits for all of them.

This is the native sidecar's preStop hook: the kubelet runs it as soon as the pod is being
deleted, while it signals the sidecar itself only after the application has exited, so the
hand-over no longer waits for the application's shutdown. It needs no permission at all:

  lifecycle:
    preStop:
      exec: {command: ["/incumbent", "withdraw"]}`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return o.run(cmd.Context(), cmd.OutOrStdout()) },
	}
	fs := cmd.Flags()
	fs.StringVar(&o.controlAddr, "control-addr", DefaultControlAddr, "the sidecar's --control-addr")
	fs.DurationVar(&o.timeout, "timeout", 25*time.Second, "how long to wait for the step-down to finish (below a pod's default terminationGracePeriodSeconds, 30s)")
	annotateEnv(fs)
	return cmd
}

func (o *withdrawOptions) run(ctx context.Context, out io.Writer) error {
	if o.controlAddr == "" {
		return usagef("--control-addr is required (or INCUMBENT_CONTROL_ADDR): the sidecar's control endpoint")
	}
	if err := checkControlAddr(o.controlAddr); err != nil {
		return usage(err)
	}
	if o.timeout <= 0 {
		return usagef("--timeout must be positive, got %v", o.timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	client, base := controlClient(o.controlAddr, 10*time.Second)
	q := url.Values{"reason": {"incumbent withdraw"}}
	// The sidecar refuses a withdrawal meant for another one (several on one
	// host network): name the pod and the lease when they are known.
	if v := o.env.Getenv("POD_NAME"); v != "" {
		q.Set("pod", v)
	}
	if v := o.env.Getenv("INCUMBENT_LEASE"); v != "" {
		q.Set("lease", v)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/withdraw?"+q.Encode(), nil)
	if err != nil {
		return failure(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return failuref("no sidecar answers on %s: %w", o.controlAddr, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return failuref("the sidecar refused to withdraw: %s %s", resp.Status, body)
	}
	poll := time.NewTicker(withdrawPoll)
	defer poll.Stop()
	for {
		views, err := o.status(ctx, client, base)
		var v statusapi.View // the first lease not withdrawn yet, else the last
		done := len(views) > 0
		for _, v = range views {
			if !withdrawn(v) {
				done = false
				break
			}
		}
		var ne *net.OpError
		switch {
		case err == nil && done && len(views) == 1:
			fmt.Fprintf(out, "withdrawn: %s (%s)\n", v.State, v.Reason)
			return nil
		case err == nil && done:
			for _, v := range views {
				fmt.Fprintf(out, "withdrawn: lease %s: %s (%s)\n", v.Lease, v.State, v.Reason)
			}
			return nil
		case errors.As(err, &ne) && ne.Op == "dial":
			fmt.Fprintln(out, "withdrawn: the sidecar has exited")
			return nil // it went away after accepting: nothing left to wait for
		case ctx.Err() != nil:
			return failuref("the step-down did not finish within %v (last: %v %v)", o.timeout, v.State, err)
		}
		select {
		case <-ctx.Done():
		case <-poll.C:
		}
	}
}

// withdrawn reports whether a lease's view says its step-down is over.
func withdrawn(v statusapi.View) bool {
	return v.State == string(election.StateStopped) ||
		(v.State == string(election.StateHeldBack) && strings.HasPrefix(v.Reason, "withdrawn"))
}

// status reads the view of every lease of the sidecar (one, or several).
func (o *withdrawOptions) status(ctx context.Context, client *http.Client, base string) ([]statusapi.View, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/leases", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/leases: %s", resp.Status)
	}
	var ls statusapi.Leases
	if err := json.NewDecoder(resp.Body).Decode(&ls); err != nil {
		return nil, err
	}
	return ls.Items, nil
}
