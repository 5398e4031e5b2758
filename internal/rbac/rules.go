// Package rbac knows the Kubernetes permissions an incumbent sidecar needs:
// it prints them as a least-privilege ServiceAccount, Role and RoleBinding
// (the `incumbent rbac` command), and checks at startup that the sidecar's
// own credentials grant them, naming each missing verb and resource.
package rbac

import (
	"errors"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Options describe one sidecar deployment.
type Options struct {
	// Lease is the Lease's name; Namespace its namespace (also the pods'
	// and the Role's). Both are required, except that YAML accepts an
	// empty Namespace (see YAML).
	Lease, Namespace string
	// Leases, for a sidecar that holds several (run --lease a,b,c), names
	// them all, in order; Lease is then empty or the first. The rules on
	// the Lease name every one, and an optional rule grants list and watch
	// on the namespace's Leases, which the shared watch of several Leases
	// needs.
	Leases []string
	// ServiceAccount the sidecar runs as. Required for YAML.
	ServiceAccount string
	// ExistingServiceAccount says that the ServiceAccount exists already
	// (the workload's own): YAML binds it but does not print it, so that
	// deleting the printed objects never deletes it.
	ExistingServiceAccount bool
	// RoleName names the Role and RoleBinding. Default "incumbent-<lease>".
	RoleName string
	// LabelPod adds the pod permissions of --label-pod.
	LabelPod bool
	// Events adds the event permission of --events.
	Events bool
}

// Rule is one permission, with the reason it is needed.
type Rule struct {
	APIGroup      string // "" is the core group
	Resource      string
	Verbs         []string
	ResourceNames []string // empty: any object of the namespace
	Why           []string // comment lines
	// Optional permissions make the sidecar faster or more helpful, but it
	// works without them: Check reports them missing apart, as warnings.
	Optional bool
	// Without says, for an optional permission, what the sidecar does
	// without it.
	Without string
}

// Validate reports missing or malformed names.
func (o Options) Validate() error { return o.validate(true) }

// validate reports missing or malformed names; an empty namespace is
// accepted unless requireNamespace.
func (o Options) validate(requireNamespace bool) error {
	names := o.names()
	if len(names) == 0 {
		return errors.New("a lease name is required")
	}
	if len(o.Leases) > 0 && o.Lease != "" && o.Lease != o.Leases[0] {
		return fmt.Errorf("lease %q is not the first of %q", o.Lease, o.Leases)
	}
	for i, name := range names {
		if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
			return fmt.Errorf("invalid lease name %q: %s", name, msgs[0])
		}
		if slices.Contains(names[:i], name) {
			return fmt.Errorf("lease %q is named twice", name)
		}
	}
	if o.Namespace == "" && requireNamespace {
		return errors.New("a namespace is required")
	}
	if msgs := validation.IsDNS1123Label(o.Namespace); o.Namespace != "" && len(msgs) > 0 {
		return fmt.Errorf("invalid namespace %q: %s", o.Namespace, msgs[0])
	}
	if o.ServiceAccount != "" {
		if msgs := validation.IsDNS1123Subdomain(o.ServiceAccount); len(msgs) > 0 {
			return fmt.Errorf("invalid service account name %q: %s", o.ServiceAccount, msgs[0])
		}
	}
	if msgs := validation.IsDNS1123Subdomain(o.roleName()); len(msgs) > 0 {
		return fmt.Errorf("invalid role name %q: %s", o.roleName(), msgs[0])
	}
	return nil
}

func (o Options) roleName() string {
	if o.RoleName != "" {
		return o.RoleName
	}
	return "incumbent-" + o.first()
}

// names returns every lease of o, in order.
func (o Options) names() []string {
	switch {
	case len(o.Leases) > 0:
		return o.Leases
	case o.Lease != "":
		return []string{o.Lease}
	}
	return nil
}

// first is the (first) lease's name.
func (o Options) first() string {
	if names := o.names(); len(names) > 0 {
		return names[0]
	}
	return ""
}

// Rules returns the permissions the sidecar needs, least first.
func Rules(o Options) []Rule {
	names := o.names()
	if len(names) > 1 {
		return append(severalLeases(names), commonRules(o)...)
	}
	lease := o.first()
	rules := []Rule{
		{
			APIGroup: "coordination.k8s.io", Resource: "leases",
			Verbs: []string{"get", "update"}, ResourceNames: []string{lease},
			Why: []string{"Read, renew and release this one Lease."},
		},
		{
			APIGroup: "coordination.k8s.io", Resource: "leases",
			Verbs: []string{"watch"}, ResourceNames: []string{lease}, Optional: true,
			Without: "it polls the Lease every retry period instead of watching it: slower hand-overs",
			Why: []string{
				"Watch this one Lease: a follower learns of a release at once instead of",
				"reading the Lease every retry period (optional: without it the sidecar",
				"polls). The watch is a request on the collection with fieldSelector",
				"metadata.name=" + lease + ", which the API server authorizes as a watch of",
				"that name: no list permission.",
			},
		},
	}
	return append(rules, commonRules(o)...)
}

// severalLeases are the Lease rules of a sidecar that holds several.
func severalLeases(names []string) []Rule {
	return []Rule{
		{
			APIGroup: "coordination.k8s.io", Resource: "leases",
			Verbs: []string{"get", "update"}, ResourceNames: names,
			Why: []string{"Read, renew and release these Leases, one election each."},
		},
		{
			APIGroup: "coordination.k8s.io", Resource: "leases",
			Verbs: []string{"list", "watch"}, Optional: true,
			Without: "every election watches its own Lease (the rule below): one watcher per lease on the API server, and one log line says so",
			Why: []string{
				"Watch all the Leases of the namespace at once: with several leases the",
				"sidecar follows them through one watch of the namespace's Leases (one",
				"watcher on the API server, whatever the number of leases). A watch of",
				"the collection needs list and watch without resourceNames, which lets",
				"the sidecar read every Lease of the namespace (not change them).",
				"Optional: without it the sidecar says so once in its log and falls back",
				"to one watch per lease (the next rule).",
			},
		},
		{
			APIGroup: "coordination.k8s.io", Resource: "leases",
			Verbs: []string{"list", "watch"}, ResourceNames: names, Optional: true,
			Without: "it polls the Leases every retry period instead of watching them: slower hand-overs",
			Why: []string{
				"Watch each of these Leases by name: the fallback when the rule above is",
				"not granted (optional: without both the sidecar polls). Each is a",
				"request on the collection with fieldSelector metadata.name=<lease>,",
				"which the API server authorizes as a list or watch of that name (a",
				"Lease that does not exist yet is looked up by such a list first).",
			},
		},
	}
}

// commonRules are the rules after the Lease's own.
func commonRules(o Options) []Rule {
	rules := []Rule{
		{
			APIGroup: "coordination.k8s.io", Resource: "leases", Verbs: []string{"create"},
			Why: []string{
				"Create the Lease the first time (or after it was deleted). RBAC cannot",
				"restrict create by resourceNames: the new object's name is in the request",
				"body, not in the URL that authorization sees, so this rule allows",
				"creating any Lease in the namespace (but not reading or changing others).",
			},
		},
	}
	if o.LabelPod {
		rules = append(rules, Rule{
			APIGroup: "", Resource: "pods", Verbs: []string{"get", "list", "patch"},
			Why: []string{
				"--label-pod: read its own pod at startup, find pods of this lease still",
				"labelled leader, and patch the incumbent.io/role label. A Deployment's pod",
				"names are not known in advance, so these cannot be restricted by",
				"resourceNames. Note: patch on pods allows changing any pod's mutable",
				"fields in the namespace; give the sidecar its own service account.",
			},
		})
	}
	if o.Events {
		rules = append(rules, Rule{
			APIGroup: "", Resource: "events", Verbs: []string{"create"},
			Why: []string{
				"--events: record LeaderElected / LeaderSteppedDown events on its pod",
				"(set POD_UID from the downward API so that kubectl describe shows them),",
				"and a PermissionDenied event when a permission above is refused.",
			},
		})
	} else {
		rules = append(rules, Rule{
			APIGroup: "", Resource: "events", Verbs: []string{"create"}, Optional: true,
			Without: "a refused permission is only logged, not shown by kubectl describe pod",
			Why: []string{
				"Record a PermissionDenied Warning event on its pod when a permission",
				"above is refused (a Role edited by hand), so that kubectl describe pod",
				"says which one (set POD_UID from the downward API). Optional: without",
				"it the refusal is only logged.",
			},
		})
	}
	return rules
}
