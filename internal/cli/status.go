package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/incumbent-io/incumbent/internal/kubeclient"
	"github.com/incumbent-io/incumbent/store"
)

// requestTimeout bounds each store request of the operator commands.
const requestTimeout = 10 * time.Second

type statusOptions struct {
	common
	output        string
	allNamespaces bool
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
	o := &statusOptions{common: common{env: e, name: "status", leaseOptional: true}}
	cmd := &cobra.Command{
		Use:   "status [--lease NAME] [-n NAMESPACE | -A] [-o table|wide|json|yaml]",
		Short: "Show who leads what: every Lease of a namespace, or one lease in detail",
		Long: `Without --lease, list every Lease of the namespace (-A: of every namespace): the "who leads
what" view that kubectl get leases does not give.

  HOLDER      the holder's identity
  KIND        incumbent for an incumbent candidate; client-go for any other holder (client-go's
              leaderelection and what is built on it, but also kubelet and API server heartbeats)
  TERM        the holder's fencing token; "-" when it recorded none (client-go holders never do)
  RENEWED     how long ago the holder last renewed
  EXPIRES-IN  the holder's renewTime plus its lease duration, by this machine's clock: informative
              only (candidates never trust written timestamps; a skewed clock shifts it)
  POD, NODE   the pod of the Lease's namespace named like the holder, or like the host name of a
              HOSTNAME_UUID identity (controller-runtime, kube-controller-manager), and its node

-o wide adds the pod's phase and IP, leaseTransitions, the lease duration and pending requests;
-o json and -o yaml print every field.

With --lease, show that one lease in detail, on any backend.

Listing needs "list" on leases; the pod columns need "list" on pods, and read <unknown>, with a
warning, where that is refused. One lease needs only "get" on it.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	o.common.addFlags(cmd.Flags())
	cmd.Flags().Lookup("lease").Usage = "name of the lease to show (default: list every Lease of the namespace; --backend kubernetes only)"
	cmd.Flags().BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "list the Leases of every namespace (without --lease)")
	cmd.Flags().StringVarP(&o.output, "output", "o", "table", "output format: table, wide, json or yaml")
	annotateEnv(cmd.Flags())
	return cmd
}

func (o *statusOptions) run(ctx context.Context, out, errOut io.Writer) error {
	switch o.output {
	case "table", "wide", "json", "yaml":
	default:
		return usagef("invalid --output %q: want table, wide, json or yaml", o.output)
	}
	if o.allNamespaces && o.lease != "" {
		return usagef("--all-namespaces lists every Lease: leave out --lease %s, or -A", o.lease)
	}
	if o.lease == "" {
		return o.list(ctx, out, errOut)
	}
	if err := o.setup(); err != nil {
		return err
	}
	st, err := o.openStore(ctx)
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
	if o.output == "json" || o.output == "yaml" {
		return failure(writeDoc(out, o.output, s))
	}
	return failure(writeStatusTable(out, s))
}

// writeDoc writes v as indented JSON, or as YAML (the same document).
func writeDoc(out io.Writer, format string, v any) error {
	if format == "yaml" {
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = out.Write(b)
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s\n", b)
	return err
}

func (o *statusOptions) describe(rec store.Record, now time.Time) leaseStatus {
	return describe(o.lease, o.namespace, rec, now)
}

// describe is the status document of the lease namespace/name (namespace
// empty outside Kubernetes) in state rec, at now by this machine's clock.
func describe(name, namespace string, rec store.Record, now time.Time) leaseStatus {
	s := leaseStatus{Lease: name, Namespace: namespace, Holder: rec.Holder, Instance: rec.Instance,
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

// findPod looks up the holder's pod (see podNames); nil when there is none
// or it cannot be read.
func (o *statusOptions) findPod(ctx context.Context, holder string) *podInfo {
	kc, err := kubeclient.New(o.rest)
	if err != nil {
		return nil
	}
	for _, name := range podNames(holder) {
		p, err := kc.Pods(o.namespace).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			return podInfoOf(p)
		}
		if !apierrors.IsNotFound(err) {
			o.logger.Debug("cannot read the holder's pod", "pod", name, "err", err)
			return nil
		}
	}
	return nil
}

// podNames are the names the holder's pod may have, most likely first: the
// identity itself (incumbent's default, POD_NAME), then, for an identity
// "HOSTNAME_UUID" (controller-runtime, kube-controller-manager and
// kube-scheduler write them), the host name, which in a pod is the pod's
// name.
func podNames(holder string) []string {
	names := []string{holder}
	if host, _, ok := strings.Cut(holder, "_"); ok && host != "" {
		names = append(names, host)
	}
	return names
}

func podInfoOf(p *corev1.Pod) *podInfo {
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
	fmt.Fprintln(tw, "LEASE\tHOLDER\tTERM\tRENEWED-AT\tEXPIRES-IN\tPOD\tNOTE")
	name := s.Lease
	if s.Namespace != "" {
		name = s.Namespace + "/" + s.Lease
	}
	fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", name, holder, s.Term, renewed, expires, pod, noteOf(s))
	return tw.Flush()
}

// noteOf names the request pending on a lease, if any.
func noteOf(s leaseStatus) string {
	switch {
	case s.TransferTo != "":
		return "transfer to " + s.TransferTo + " requested"
	case s.ReleaseRequested:
		return "release requested"
	case s.HandoffTo != "" && s.Holder == "":
		return "reserved for " + s.HandoffTo
	}
	return ""
}
