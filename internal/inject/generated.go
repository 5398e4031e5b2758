package inject

import (
	"fmt"
	"strconv"

	yaml "go.yaml.in/yaml/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/incumbent-io/incumbent/internal/rbac"
)

// The objects inject writes beside a workload: the ServiceAccount, Role and
// RoleBinding of `incumbent rbac`, and in the label mode the leader Service
// and a PodDisruptionBudget. Each carries the label incumbent.io/lease, and
// goes in the workload's namespace (none when the workload names none, so
// that both go where they are applied).

// rbacComment heads the RBAC objects.
const rbacComment = `# incumbent's permissions, as "incumbent rbac" prints them. The sidecar
# releases the lease with them when its pod terminates: delete them only
# after the pods are gone, as the label incumbent.io/removal=last says (see
# "Removal" in docs/sidecar.md).`

// rbacObjects returns the ServiceAccount (when it is inject's own), Role
// and RoleBinding for a workload in namespace ns running as sa.
func (o *Options) rbacObjects(ns string, sa account) ([]*yaml.Node, error) {
	var leases []string
	if len(o.Leases) > 1 {
		leases = o.Leases
	}
	text, err := rbac.YAML(rbac.Options{Lease: o.Lease, Leases: leases, Namespace: ns, ServiceAccount: sa.name, RoleName: o.ownName(),
		LabelPod: o.Mode == Labels, Events: o.Events, ExistingServiceAccount: !sa.own})
	if err != nil {
		return nil, err
	}
	docs, err := parseStream(Input{Name: "incumbent rbac", Data: []byte(text)})
	if err != nil {
		return nil, err
	}
	var out []*yaml.Node
	for _, d := range docs {
		n := d.node.Content[0]
		o.mark(n)
		last(n)
		if o.RBAC == RBACKeep {
			keep(n)
		}
		out = append(out, n)
	}
	out[0].HeadComment = rbacComment
	return out, nil
}

// last labels an object incumbent.io/removal=last: the sidecar needs it
// until its pod is gone.
func last(n *yaml.Node) {
	meta := get(n, "metadata")
	l := get(meta, "labels")
	if l == nil || l.Tag == "!!null" {
		l = mapping()
		set(meta, "labels", l, "")
	}
	set(l, RemovalLabel, str(RemoveLast), "")
}

// keep annotates an object helm.sh/resource-policy: keep.
func keep(n *yaml.Node) {
	meta := get(n, "metadata")
	ann := get(meta, "annotations")
	if ann == nil || ann.Tag == "!!null" {
		ann = mapping()
		set(meta, "annotations", ann, "")
	}
	set(ann, HelmKeep, str("keep"), "")
}

// mark labels a generated object incumbent.io/lease=<lease>.
func (o *Options) mark(n *yaml.Node) {
	meta := get(n, "metadata")
	l := get(meta, "labels")
	if l == nil || l.Tag == "!!null" {
		l = mapping()
		set(meta, "labels", l, "")
	}
	set(l, LeaseLabel, str(o.Lease), "")
}

// objectHeader returns the apiVersion, kind and metadata of a new object.
func (o *Options) objectHeader(apiVersion, kind, name, ns, comment string) *yaml.Node {
	n := mapping()
	n.HeadComment = comment
	set(n, "apiVersion", str(apiVersion), "")
	set(n, "kind", str(kind), "")
	meta := mapping()
	set(meta, "name", str(name), "")
	if ns != "" {
		set(meta, "namespace", str(ns), "")
	}
	set(n, "metadata", meta, "")
	o.mark(n)
	return n
}

// leaderService returns the label mode's Service, which selects the pod
// labelled leader and routes to the ports its containers declare.
func (o *Options) leaderService(w *workload) (*yaml.Node, error) {
	n := o.objectHeader("v1", "Service", o.ServiceName, w.namespace(),
		"# Routes to the leader alone: the sidecar (--label-pod) labels the leader's\n"+
			"# pod incumbent.io/role=leader, and every other one follower.")
	sel := mapping()
	for _, kv := range w.selectorLabels() {
		if kv[0] != LeaseLabel && kv[0] != RoleLabel {
			set(sel, kv[0], str(kv[1]), "")
		}
	}
	set(sel, LeaseLabel, str(o.Lease), "")
	set(sel, RoleLabel, str("leader"), "")
	ports := seq()
	type sp struct {
		name, protocol string
		number         int
	}
	var found []sp
	for _, c := range seqItems(get(w.spec, "containers")) {
		for _, p := range seqItems(get(c, "ports")) {
			if scalar(get(p, "name")) == StatusPortName {
				continue // exec mode's incumbent
			}
			number, err := strconv.Atoi(scalar(get(p, "containerPort")))
			if err != nil {
				return nil, fmt.Errorf("%s: %s: container %s has a port without a valid containerPort", w.where(), w.ref(), scalar(get(c, "name")))
			}
			found = append(found, sp{scalar(get(p, "name")), scalar(get(p, "protocol")), number})
		}
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("%s: %s declares no container port, and the leader Service routes to the ports the pod declares: declare them (containers[].ports), or leave the Service out with --service=false", w.where(), w.ref())
	}
	for _, p := range found {
		m := mapping()
		m.Style = yaml.FlowStyle
		name, target := p.name, str(p.name)
		if name == "" {
			target = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(p.number)}
			if len(found) > 1 {
				name = "port-" + strconv.Itoa(p.number)
			}
		}
		if name != "" {
			set(m, "name", str(name), "")
		}
		set(m, "port", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(p.number)}, "")
		set(m, "targetPort", target, "")
		if p.protocol != "" && p.protocol != "TCP" {
			set(m, "protocol", str(p.protocol), "")
		}
		ports.Content = append(ports.Content, m)
	}
	spec := mapping()
	set(spec, "selector", sel, "")
	set(spec, "ports", ports, "")
	set(n, "spec", spec, "")
	return n, nil
}

// budget returns the label mode's PodDisruptionBudget, or nil when the
// workload's kind cannot have one, or a budget of the input already
// selects its pods (two budgets on one pod block every eviction).
func (o *Options) budget(w *workload, objs []*object) (*yaml.Node, error) {
	if !w.wk.budget {
		return nil, nil
	}
	podLabels := labels.Set{}
	for _, kv := range w.templateLabels() {
		podLabels[kv[0]] = kv[1]
	}
	for _, ob := range objs {
		if ob.kind() != "PodDisruptionBudget" || ob.namespace() != w.namespace() || ob.name() == o.ownName() {
			continue
		}
		var ls metav1.LabelSelector
		if err := decodeStrict(path(ob.node, "spec", "selector"), &ls); err != nil {
			return nil, fmt.Errorf("%s: %s: spec.selector: %w", ob.where(), ob.ref(), err)
		}
		sel, err := metav1.LabelSelectorAsSelector(&ls)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: spec.selector: %w", ob.where(), ob.ref(), err)
		}
		if !sel.Empty() && sel.Matches(podLabels) {
			return nil, nil // the chart's own budget protects the pods
		}
	}
	selector := path(w.node, "spec", "selector")
	if w.kind() == "ReplicationController" {
		m := mapping()
		set(m, "matchLabels", clone(selector), "")
		selector = m
	}
	if selector == nil {
		return nil, fmt.Errorf("%s: %s has no spec.selector", w.where(), w.ref())
	}
	n := o.objectHeader("policy/v1", "PodDisruptionBudget", o.ownName(), w.namespace(),
		"# Every replica stays Ready in the label mode, so a budget works as usual:\n"+
			"# a node drain evicts one replica at a time, never the leader and its\n"+
			"# successor together.")
	spec := mapping()
	set(spec, "maxUnavailable", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: "1"}, "")
	set(spec, "selector", clone(selector), "")
	set(n, "spec", spec, "")
	return n, nil
}

// objectKey returns the key of a generated object.
func objectKey(n *yaml.Node) key {
	return key{scalar(get(n, "kind")), scalar(path(n, "metadata", "namespace")), scalar(path(n, "metadata", "name"))}
}
