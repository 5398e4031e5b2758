package inject

import (
	"fmt"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// object is one Kubernetes object of the input: a document of its own, or
// an item of a List.
type object struct {
	node   *yaml.Node // its mapping
	source string     // the input it came from
	// Where it sits: the document that holds it and, for an item of a
	// List, the List's items sequence.
	doc   *document
	items *yaml.Node
}

func (o *object) apiVersion() string { return scalar(get(o.node, "apiVersion")) }
func (o *object) kind() string       { return scalar(get(o.node, "kind")) }
func (o *object) name() string       { return scalar(path(o.node, "metadata", "name")) }
func (o *object) namespace() string  { return scalar(path(o.node, "metadata", "namespace")) }

// ref names the object in messages: Deployment/web, or
// Deployment/web (namespace prod).
func (o *object) ref() string {
	s := o.kind() + "/" + o.name()
	if ns := o.namespace(); ns != "" {
		s += " (namespace " + ns + ")"
	}
	return s
}

// what is where and ref, for messages.
func (o *object) what() string { return o.where() + ": " + o.ref() }

// where is the object's place in its input, file:line.
func (o *object) where() string { return fmt.Sprintf("%s:%d", o.source, o.node.Line) }

// key identifies an object: kind, namespace and name.
type key struct{ kind, namespace, name string }

func (o *object) key() key { return key{o.kind(), o.namespace(), o.name()} }

// isList reports whether n is a List (kind: List, a typed list such as
// PodList, or a KRM function's ResourceList) holding items.
func isList(n *yaml.Node) bool {
	k := scalar(get(n, "kind"))
	items := get(n, "items")
	return strings.HasSuffix(k, "List") && items != nil && items.Kind == yaml.SequenceNode
}

// collect returns every object of docs, the items of Lists (nested too)
// in their place.
func collect(docs []*document) []*object {
	var out []*object
	var walk func(n *yaml.Node, d *document, items *yaml.Node)
	walk = func(n *yaml.Node, d *document, items *yaml.Node) {
		n = deref(n)
		if n == nil || n.Kind != yaml.MappingNode {
			return
		}
		if isList(n) {
			for _, it := range get(n, "items").Content {
				walk(it, d, get(n, "items"))
			}
			return
		}
		out = append(out, &object{node: n, source: d.source, doc: d, items: items})
	}
	for _, d := range docs {
		if d.node != nil {
			walk(d.node.Content[0], d, nil)
		}
	}
	return out
}

// insert places new objects before (or after) at, in the List that holds
// at, or as documents of their own beside its document.
func insert(docs []*document, at *object, after bool, objs ...*yaml.Node) []*document {
	if len(objs) == 0 {
		return docs
	}
	if at.items != nil {
		i := index(at.items.Content, at.node)
		if after {
			i++
		}
		at.items.Content = append(at.items.Content[:i], append(objs, at.items.Content[i:]...)...)
		return docs
	}
	i := 0
	for i < len(docs) && docs[i] != at.doc {
		i++
	}
	if after {
		i++
	}
	var add []*document
	for _, n := range objs {
		d := newDocument(n)
		d.compact = at.doc.compact // in the style of the workload's input
		add = append(add, d)
	}
	return append(docs[:i], append(add, docs[i:]...)...)
}

// removeObject takes an object out of its List, or its document out of
// the stream.
func removeObject(docs []*document, ob *object) []*document {
	if ob.items != nil {
		i := index(ob.items.Content, ob.node)
		if i < len(ob.items.Content) {
			ob.items.Content = append(ob.items.Content[:i], ob.items.Content[i+1:]...)
		}
		return docs
	}
	return slices.DeleteFunc(docs, func(d *document) bool { return d == ob.doc })
}

func index(nodes []*yaml.Node, n *yaml.Node) int {
	for i, c := range nodes {
		if deref(c) == n {
			return i
		}
	}
	return len(nodes)
}

// A workload kind: where its pod template is.
type workloadKind struct {
	apiVersion string
	template   []string // path to the pod template; nil: the object is the pod
	// budget: a PodDisruptionBudget can protect its pods (a controller
	// with a scale subresource and a selector).
	budget bool
}

var workloadKinds = map[string]workloadKind{
	"Deployment":            {apiVersion: "apps/v1", template: []string{"spec", "template"}, budget: true},
	"StatefulSet":           {apiVersion: "apps/v1", template: []string{"spec", "template"}, budget: true},
	"ReplicaSet":            {apiVersion: "apps/v1", template: []string{"spec", "template"}, budget: true},
	"DaemonSet":             {apiVersion: "apps/v1", template: []string{"spec", "template"}},
	"ReplicationController": {apiVersion: "v1", template: []string{"spec", "template"}, budget: true},
	"Job":                   {apiVersion: "batch/v1", template: []string{"spec", "template"}},
	"CronJob":               {apiVersion: "batch/v1", template: []string{"spec", "jobTemplate", "spec", "template"}},
	"Pod":                   {apiVersion: "v1"},
}

// group returns the API group of an apiVersion ("" for the core group).
func group(apiVersion string) string {
	if g, _, ok := strings.Cut(apiVersion, "/"); ok {
		return g
	}
	return ""
}

// workloadKindOf returns the workload kind of an object; ok is false for
// any other kind. An old version of a workload kind is an error: its
// shape may differ, and no current API server serves it.
func workloadKindOf(o *object) (wk workloadKind, ok bool, err error) {
	wk, ok = workloadKinds[o.kind()]
	if !ok {
		return wk, false, nil
	}
	if av := o.apiVersion(); av != wk.apiVersion {
		g := group(av)
		if g == group(wk.apiVersion) || (g == "extensions" && group(wk.apiVersion) == "apps") {
			return wk, false, fmt.Errorf("%s: %s is %s, which inject does not know (Kubernetes serves %s): convert it first",
				o.where(), o.ref(), av, wk.apiVersion)
		}
		return wk, false, nil // another group's kind of the same name
	}
	return wk, true, nil
}

// workload is a workload of the input and its pod template.
type workload struct {
	*object
	wk       workloadKind
	template *yaml.Node // the pod template (metadata and spec); the object itself for a Pod
	spec     *yaml.Node // the pod spec
}

func newWorkload(o *object, wk workloadKind) (*workload, error) {
	t := o.node
	if wk.template != nil {
		t = path(o.node, wk.template...)
	}
	spec := get(t, "spec")
	if spec == nil || spec.Kind != yaml.MappingNode {
		where := "spec"
		if wk.template != nil {
			where = strings.Join(wk.template, ".") + ".spec"
		}
		return nil, fmt.Errorf("%s: %s has no pod spec (%s)", o.where(), o.ref(), where)
	}
	return &workload{object: o, wk: wk, template: t, spec: spec}, nil
}

// templateLabels returns the labels of the pod template, in order.
func (w *workload) templateLabels() [][2]string {
	var out [][2]string
	if l := path(w.template, "metadata", "labels"); l != nil && l.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(l.Content); i += 2 {
			out = append(out, [2]string{l.Content[i].Value, scalar(l.Content[i+1])})
		}
	}
	return out
}

// selectorLabels returns the labels that select the workload's pods for a
// Service: the selector's matchLabels (a ReplicationController's plain
// selector), else the pod template's labels.
func (w *workload) selectorLabels() [][2]string {
	var sel *yaml.Node
	switch w.kind() {
	case "Deployment", "StatefulSet", "ReplicaSet", "DaemonSet":
		sel = path(w.node, "spec", "selector", "matchLabels")
	case "ReplicationController":
		sel = path(w.node, "spec", "selector")
	}
	if sel == nil || sel.Kind != yaml.MappingNode || len(sel.Content) == 0 {
		return w.templateLabels()
	}
	var out [][2]string
	for i := 0; i+1 < len(sel.Content); i += 2 {
		out = append(out, [2]string{sel.Content[i].Value, scalar(sel.Content[i+1])})
	}
	return out
}

// isHelmHook reports whether Helm runs the object as a hook (a test, a
// pre-install Job): never a workload to inject unless named.
func (o *object) isHelmHook() bool {
	return path(o.node, "metadata", "annotations", "helm.sh/hook") != nil
}
