package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/incumbent-io/incumbent/internal/kubeclient"
	"github.com/incumbent-io/incumbent/store"
)

// requestTimeout bounds each store request of the operator commands.
const requestTimeout = 10 * time.Second

type statusOptions struct {
	common
	output string
}

// leaseStatus is the JSON document of `incumbent status -o json`.
type leaseStatus struct {
	Lease                string     `json:"lease"`
	Namespace            string     `json:"namespace,omitempty"`
	Holder               string     `json:"holder"`
	Instance             string     `json:"instance,omitempty"`
	Term                 int64      `json:"term"`
	Transitions          int64      `json:"transitions"`
	AcquiredAt           *time.Time `json:"acquiredAt"`
	RenewedAt            *time.Time `json:"renewedAt"`
	LeaseDurationSeconds float64    `json:"leaseDurationSeconds"`
	// ExpiresInSeconds is renewedAt + leaseDuration - now by this machine's
	// clock: informative only (followers never trust written timestamps).
	ExpiresInSeconds *float64 `json:"expiresInSeconds"`
	Pod              *podInfo `json:"pod"`
	HandoffTo        string   `json:"handoffTo,omitempty"`
	TransferTo       string   `json:"transferTo,omitempty"`
	ReleaseRequested bool     `json:"releaseRequested,omitempty"`
}

// podInfo describes the pod named like the holder, if there is one.
type podInfo struct {
	Name  string `json:"name"`
	Phase string `json:"phase"`
	IP    string `json:"ip,omitempty"`
	Node  string `json:"node,omitempty"`
}

func newStatusCmd(e *Env) *cobra.Command {
	o := &statusOptions{common: common{env: e}}
	cmd := &cobra.Command{
		Use:   "status --lease NAME [-n NAMESPACE] [-o table|json]",
		Short: "Show who holds a lease: holder, term, renewal, expiry, pod",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return o.run(cmd.Context(), cmd.OutOrStdout()) },
	}
	o.common.addFlags(cmd.Flags())
	cmd.Flags().StringVarP(&o.output, "output", "o", "table", "output format: table or json")
	annotateEnv(cmd.Flags())
	return cmd
}

func (o *statusOptions) run(ctx context.Context, out io.Writer) error {
	if o.output != "table" && o.output != "json" {
		return usagef("invalid --output %q: want table or json", o.output)
	}
	if err := o.setup(); err != nil {
		return err
	}
	st, err := o.be.open(ctx, &o.common)
	if err != nil {
		return failure(err)
	}
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	rec, err := st.Get(rctx)
	if errors.Is(err, store.ErrNotFound) {
		return failuref("%s does not exist: no candidate has run yet, or it was deleted", st)
	}
	if err != nil {
		return failure(err)
	}
	s := o.describe(rec, time.Now())
	if rec.Held() && o.be.kubernetes {
		s.Pod = o.findPod(rctx, rec.Holder)
	}
	if o.output == "json" {
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return failure(err)
		}
		_, err = fmt.Fprintf(out, "%s\n", b)
		return failure(err)
	}
	return failure(writeStatusTable(out, s))
}

func (o *statusOptions) describe(rec store.Record, now time.Time) leaseStatus {
	s := leaseStatus{Lease: o.lease, Namespace: o.namespace, Holder: rec.Holder, Instance: rec.Instance,
		Term: rec.Term, Transitions: rec.Transitions, LeaseDurationSeconds: rec.LeaseDuration.Seconds(),
		HandoffTo: rec.HandoffTo, TransferTo: rec.TransferTo, ReleaseRequested: rec.ReleaseRequested}
	if !rec.AcquireTime.IsZero() {
		t := rec.AcquireTime.UTC()
		s.AcquiredAt = &t
	}
	if !rec.RenewTime.IsZero() {
		t := rec.RenewTime.UTC()
		s.RenewedAt = &t
		if rec.Held() {
			in := rec.RenewTime.Add(rec.LeaseDuration).Sub(now).Seconds()
			s.ExpiresInSeconds = &in
		}
	}
	return s
}

// findPod looks up the pod named like the holder; nil when there is none or
// it cannot be read.
func (o *statusOptions) findPod(ctx context.Context, name string) *podInfo {
	kc, err := kubeclient.New(o.rest)
	if err != nil {
		return nil
	}
	p, err := kc.Pods(o.namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if !apierrors.IsNotFound(err) {
			o.logger.Debug("cannot read the holder's pod", "err", err)
		}
		return nil
	}
	return &podInfo{Name: p.Name, Phase: string(p.Status.Phase), IP: p.Status.PodIP, Node: p.Spec.NodeName}
}

func writeStatusTable(out io.Writer, s leaseStatus) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	holder, renewed, expires, pod := "<none>", "-", "-", "-"
	if s.Holder != "" {
		holder = s.Holder
	}
	if s.RenewedAt != nil {
		renewed = s.RenewedAt.Format(time.RFC3339)
	}
	if s.ExpiresInSeconds != nil {
		d := time.Duration(*s.ExpiresInSeconds * float64(time.Second)).Round(time.Second)
		expires = d.String()
		if d < 0 {
			expires = "expired " + (-d).String() + " ago"
		}
	}
	if s.Pod != nil {
		pod = s.Pod.Name + " (" + s.Pod.Phase
		if s.Pod.IP != "" {
			pod += ", " + s.Pod.IP
		}
		if s.Pod.Node != "" {
			pod += ", " + s.Pod.Node
		}
		pod += ")"
	}
	note := ""
	switch {
	case s.TransferTo != "":
		note = "transfer to " + s.TransferTo + " requested"
	case s.ReleaseRequested:
		note = "release requested"
	case s.HandoffTo != "" && s.Holder == "":
		note = "reserved for " + s.HandoffTo
	}
	fmt.Fprintln(tw, "LEASE\tHOLDER\tTERM\tRENEWED-AT\tEXPIRES-IN\tPOD\tNOTE")
	name := s.Lease
	if s.Namespace != "" {
		name = s.Namespace + "/" + s.Lease
	}
	fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", name, holder, s.Term, renewed, expires, pod, note)
	return tw.Flush()
}
