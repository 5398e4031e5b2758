package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/client-go/rest"

	"github.com/incumbent-io/incumbent/internal/kubeclient"
	"github.com/incumbent-io/incumbent/store/kube"
)

// leaseList is the document of `incumbent status -o json|yaml` without
// --lease.
type leaseList struct {
	Items []leaseEntry `json:"items"`
	// Warnings say what could not be read (the pods of a namespace, when
	// RBAC refuses them), so that "no pod" and "not allowed to look" differ.
	Warnings []string `json:"warnings,omitempty"`
}

// leaseEntry is one Lease of the list: the document of `status --lease`,
// and who wrote it.
type leaseEntry struct {
	leaseStatus
	// HolderKind is "incumbent" or "client-go" (kube.KindOf); empty when
	// nobody holds the Lease.
	HolderKind kube.HolderKind `json:"holderKind,omitempty"`
}

// list is `status` without --lease: every Lease of the namespace, or of all
// (-A).
func (o *statusOptions) list(ctx context.Context, out, errOut io.Writer) error {
	if err := o.setupLocal(); err != nil {
		return err
	}
	if !o.be.kubernetes {
		return usagef("--lease is required with --backend %s: listing every lease works only with --backend kubernetes", o.be.name)
	}
	if err := o.connect(); err != nil {
		return err
	}
	cfg := rest.CopyConfig(o.rest)
	if cfg.QPS == 0 {
		// One pod list per namespace with a held Lease: more than
		// client-go's default 5 per second, as kubectl allows itself.
		cfg.QPS, cfg.Burst = 50, 100
	}
	kc, err := kubeclient.New(cfg)
	if err != nil {
		return failure(err)
	}
	ns := o.namespace
	if o.allNamespaces {
		ns = ""
	}
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	leases, err := kc.Leases(ns).List(rctx, metav1.ListOptions{})
	cancel()
	if err != nil {
		return listRefused(err, ns)
	}
	items := leases.Items
	slices.SortFunc(items, func(a, b coordinationv1.Lease) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	pods, warnings := o.holderPods(ctx, kc, items)
	now := time.Now()
	doc := leaseList{Items: []leaseEntry{}, Warnings: warnings}
	for i := range items {
		l := &items[i]
		rec := kube.RecordOf(l)
		e := leaseEntry{leaseStatus: describe(l.Name, l.Namespace, rec, now), HolderKind: kube.KindOf(l)}
		if e.HolderKind != kube.HolderIncumbent {
			e.Instance = "" // a stale annotation a client-go holder kept
		}
		if rec.Held() {
			e.Pod = pods.find(l.Namespace, rec.Holder)
		}
		doc.Items = append(doc.Items, e)
	}
	for _, w := range warnings {
		o.warn(errOut, w)
	}
	switch o.output {
	case "json", "yaml":
		return failure(writeDoc(out, o.output, doc))
	}
	if len(doc.Items) == 0 {
		where := fmt.Sprintf(" in namespace %q", o.namespace)
		if o.allNamespaces {
			where = ""
		}
		_, err := fmt.Fprintf(errOut, "No leases found%s.\n", where)
		return failure(err)
	}
	return failure(writeLeaseTable(out, doc, tableOptions{namespaces: o.allNamespaces, wide: o.output == "wide",
		unknownPods: pods.unreadable}, now))
}

// warn tells the user something the output lacks: a "Warning:" line on
// errOut, as kubectl writes them, or a log record when logs are JSON.
func (o *statusOptions) warn(errOut io.Writer, msg string) {
	if o.env.log.json {
		o.logger.Warn(msg)
		return
	}
	fmt.Fprintf(errOut, "Warning: %s\n", msg)
}

// listRefused describes a failed list of the Leases of namespace ns (""
// meaning every namespace). A refusal names the verb and resource, and what
// would do instead (exit code 3).
func listRefused(err error, ns string) error {
	where, instead := fmt.Sprintf("in namespace %q", ns), ", or name one lease with --lease (that needs only \"get\" on it)"
	if ns == "" {
		where, instead = "in every namespace (-A)", " cluster-wide, or list one namespace (-n) instead of every one"
	}
	switch {
	case apierrors.IsForbidden(err):
		return permissionDenied(fmt.Errorf("the API server refused verb \"list\" on resource \"leases\" (group coordination.k8s.io) %s; grant it%s: %w",
			where, instead, err))
	case apierrors.IsUnauthorized(err):
		return permissionDenied(fmt.Errorf("list leases %s: the API server did not accept the credentials: %w", where, err))
	}
	return failuref("list leases %s: %w", where, err)
}

// holderPodsIndex is the pods of the namespaces that hold a Lease.
type holderPodsIndex struct {
	byNamespace map[string]map[string]*podInfo
	unreadable  map[string]bool // namespaces whose pods could not be listed
}

// find returns the holder's pod (see podNames), or nil.
func (p holderPodsIndex) find(namespace, holder string) *podInfo {
	for _, name := range podNames(holder) {
		if pod := p.byNamespace[namespace][name]; pod != nil {
			return pod
		}
	}
	return nil
}

// holderPods lists the pods of every namespace with a held Lease, one list
// (of at most requestTimeout) per namespace. A namespace whose pods cannot
// be listed (RBAC refuses, say) is left out with a warning: the listing goes
// on without its pod column.
func (o *statusOptions) holderPods(ctx context.Context, kc *kubeclient.Client, leases []coordinationv1.Lease) (holderPodsIndex, []string) {
	idx := holderPodsIndex{byNamespace: map[string]map[string]*podInfo{}, unreadable: map[string]bool{}}
	var warnings []string
	for _, l := range leases {
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
			continue
		}
		if _, done := idx.byNamespace[l.Namespace]; done || idx.unreadable[l.Namespace] {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		list, err := kc.Pods(l.Namespace).List(rctx, metav1.ListOptions{})
		cancel()
		if err != nil {
			idx.unreadable[l.Namespace] = true
			var w string
			if apierrors.IsForbidden(err) {
				w = fmt.Sprintf("the API server refused verb \"list\" on resource \"pods\" (group core) in namespace %q: the holders' pods and nodes there are not shown", l.Namespace)
			} else {
				w = fmt.Sprintf("cannot list the pods of namespace %q, the holders' pods and nodes there are not shown: %v", l.Namespace, err)
			}
			warnings = append(warnings, w)
			continue
		}
		pods := map[string]*podInfo{}
		for i := range list.Items {
			pods[list.Items[i].Name] = podInfoOf(&list.Items[i])
		}
		idx.byNamespace[l.Namespace] = pods
	}
	return idx, warnings
}

type tableOptions struct {
	namespaces  bool            // a NAMESPACE column (-A)
	wide        bool            // -o wide
	unknownPods map[string]bool // namespaces whose pods could not be read
}

// writeLeaseTable writes the listing as kubectl writes its tables.
func writeLeaseTable(out io.Writer, doc leaseList, opts tableOptions, now time.Time) error {
	tw := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
	head := []string{"NAME", "HOLDER", "KIND", "TERM", "RENEWED", "EXPIRES-IN", "POD", "NODE"}
	if opts.namespaces {
		head = append([]string{"NAMESPACE"}, head...)
	}
	if opts.wide {
		head = append(head, "PHASE", "IP", "TRANSITIONS", "DURATION", "NOTE")
	}
	row := func(cells []string) {
		for i, c := range cells {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, c)
		}
		fmt.Fprintln(tw)
	}
	row(head)
	for _, e := range doc.Items {
		holder, kind, term := "<none>", "-", "-"
		if e.Holder != "" {
			holder = e.Holder
		}
		if e.HolderKind != kube.HolderNone {
			kind = string(e.HolderKind)
		}
		if e.Term > 0 {
			term = strconv.FormatInt(e.Term, 10)
		}
		renewed, expires := "-", "-"
		if e.RenewedAt != nil {
			renewed = ago(now.Sub(*e.RenewedAt))
		}
		if e.ExpiresInSeconds != nil {
			if d := time.Duration(*e.ExpiresInSeconds * float64(time.Second)); d >= 0 {
				expires = duration.HumanDuration(d)
			} else {
				expires = "expired " + duration.HumanDuration(-d) + " ago"
			}
		}
		pod, node, phase, ip := "-", "-", "-", "-"
		switch {
		case e.Pod != nil:
			pod, phase = e.Pod.Name, e.Pod.Phase
			if e.Pod.Node != "" {
				node = e.Pod.Node
			}
			if e.Pod.IP != "" {
				ip = e.Pod.IP
			}
		case e.Holder != "" && opts.unknownPods[e.Namespace]:
			pod, node, phase, ip = "<unknown>", "<unknown>", "<unknown>", "<unknown>"
		}
		cells := []string{e.Lease, holder, kind, term, renewed, expires, pod, node}
		if opts.namespaces {
			cells = append([]string{e.Namespace}, cells...)
		}
		if opts.wide {
			note := noteOf(e.leaseStatus)
			if note == "" {
				note = "-"
			}
			dur := "-"
			if e.LeaseDurationSeconds > 0 {
				dur = time.Duration(e.LeaseDurationSeconds * float64(time.Second)).String()
			}
			cells = append(cells, phase, ip, strconv.FormatInt(e.Transitions, 10), dur, note)
		}
		row(cells)
	}
	return tw.Flush()
}

// ago says how long ago d was, as kubectl writes ages ("5s ago"); a time
// in the future (the writer's clock is ahead of this one) is "in 3s".
func ago(d time.Duration) string {
	if d < 0 {
		return "in " + duration.HumanDuration(-d)
	}
	return duration.HumanDuration(d) + " ago"
}
