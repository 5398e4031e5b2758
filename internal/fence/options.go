package fence

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Options describe the fence of one election.
type Options struct {
	// Lease and Namespace locate the election's Lease, the policy's
	// parameter. Both are required.
	Lease, Namespace string
	// ServiceAccount is the service account (of Namespace) whose requests
	// are fenced: the one the candidates' pods run as. Required.
	ServiceAccount string
	// Resources are the resources whose writes are fenced. At least one.
	Resources []Resource
	// Operations fenced: any of CREATE, UPDATE, DELETE, CONNECT (a patch is
	// an UPDATE). Empty means CREATE, UPDATE and DELETE.
	Operations []string
	// Name names the policy and its binding, which are cluster-scoped.
	// Default "incumbent-fence.<namespace>.<lease>".
	Name string
	// Namespaces are the namespaces whose objects are fenced (the policy's
	// namespaceSelector). Default: Namespace alone. Cluster-scoped resources
	// are fenced whatever this says. The selector also bounds what a missing
	// Lease refuses: the API server looks the parameter up before it tells
	// the fenced service account from other users, so while the Lease is
	// missing every user's writes to the fenced resources there are refused.
	Namespaces []string
	// RequirePodUID refuses every request while the Lease records no pod UID
	// for its holder, instead of falling back to comparing the pod's name
	// with the holder's identity. Use it when every candidate is an
	// incumbent sidecar given its pod's UID (inject sets POD_UID).
	RequirePodUID bool
}

// defaultOperations are the operations fenced when Options.Operations is
// empty: every write but CONNECT (exec, attach, port-forward, proxy).
func defaultOperations() []string { return []string{"CREATE", "UPDATE", "DELETE"} }

// knownOperations are the admission operations a rule may name.
func knownOperations() []string { return []string{"CREATE", "UPDATE", "DELETE", "CONNECT"} }

// Resource names a resource of an API group, optionally a subresource.
type Resource struct {
	// Group is the API group; "" is the core group. "*" is every group.
	Group string
	// Resource is the plural resource name, e.g. "configmaps"; "*" is every
	// resource of the group.
	Resource string
	// Subresource, e.g. "status"; empty means the resource itself.
	Subresource string
}

// String renders r as ParseResource reads it, with "core" for the core group.
func (r Resource) String() string {
	g := r.Group
	if g == "" {
		g = "core"
	}
	s := g + "/" + r.Resource
	if r.Subresource != "" {
		s += "/" + r.Subresource
	}
	return s
}

// ParseResource reads GROUP/RESOURCE or GROUP/RESOURCE/SUBRESOURCE, for
// example core/configmaps, apps/deployments, apps/deployments/scale or
// example.com/widgets. The core group is written "core" (or left empty:
// /configmaps); "*" stands for every group or every resource.
func ParseResource(s string) (Resource, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return Resource{}, fmt.Errorf("resource %q: want GROUP/RESOURCE, e.g. core/configmaps, apps/deployments or apps/deployments/status", s)
	}
	r := Resource{Group: parts[0], Resource: parts[1]}
	if r.Group == "core" {
		r.Group = ""
	}
	if len(parts) == 3 {
		r.Subresource = parts[2]
		if r.Subresource == "" {
			return Resource{}, fmt.Errorf("resource %q: the subresource after the second / is empty", s)
		}
	}
	if err := r.validate(); err != nil {
		return Resource{}, fmt.Errorf("resource %q: %w", s, err)
	}
	return r, nil
}

func (r Resource) validate() error {
	if r.Group != "" && r.Group != "*" {
		if msgs := validation.IsDNS1123Subdomain(r.Group); len(msgs) > 0 {
			return fmt.Errorf("invalid API group %q: %s", r.Group, msgs[0])
		}
	}
	if r.Resource == "" {
		return errors.New("the resource name is empty")
	}
	if r.Resource != "*" {
		if msgs := validation.IsDNS1123Label(r.Resource); len(msgs) > 0 {
			return fmt.Errorf("invalid resource name %q (want the plural, lower-case name, e.g. configmaps): %s", r.Resource, msgs[0])
		}
	}
	if r.Subresource != "" && r.Subresource != "*" {
		if msgs := validation.IsDNS1123Label(r.Subresource); len(msgs) > 0 {
			return fmt.Errorf("invalid subresource name %q: %s", r.Subresource, msgs[0])
		}
	}
	return nil
}

// Validate reports what is missing or malformed, naming it.
func (o Options) Validate() error {
	var missing []string
	if o.Lease == "" {
		missing = append(missing, "a lease name")
	}
	if o.Namespace == "" {
		missing = append(missing, "a namespace")
	}
	if o.ServiceAccount == "" {
		missing = append(missing, "a service account")
	}
	if len(o.Resources) == 0 {
		missing = append(missing, "at least one resource")
	}
	switch len(missing) {
	case 0:
	case 1:
		return fmt.Errorf("fence: %s is required", missing[0])
	default:
		return fmt.Errorf("fence: %s are required", strings.Join(missing, ", "))
	}
	if msgs := validation.IsDNS1123Subdomain(o.Lease); len(msgs) > 0 {
		return fmt.Errorf("fence: invalid lease name %q: %s", o.Lease, msgs[0])
	}
	if msgs := validation.IsDNS1123Label(o.Namespace); len(msgs) > 0 {
		return fmt.Errorf("fence: invalid namespace %q: %s", o.Namespace, msgs[0])
	}
	if msgs := validation.IsDNS1123Subdomain(o.ServiceAccount); len(msgs) > 0 {
		return fmt.Errorf("fence: invalid service account name %q: %s", o.ServiceAccount, msgs[0])
	}
	for _, ns := range o.Namespaces {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			return fmt.Errorf("fence: invalid fenced namespace %q: %s", ns, msgs[0])
		}
	}
	for _, r := range o.Resources {
		if err := r.validate(); err != nil {
			return fmt.Errorf("fence: resource %s: %w", r, err)
		}
	}
	for _, op := range o.Operations {
		if !slices.Contains(knownOperations(), op) {
			return fmt.Errorf("fence: unknown operation %q: want %s (a patch is an UPDATE)", op, strings.Join(knownOperations(), ", "))
		}
	}
	if msgs := validation.IsDNS1123Subdomain(o.name()); len(msgs) > 0 {
		return fmt.Errorf("fence: invalid policy name %q (give a shorter one): %s", o.name(), msgs[0])
	}
	return nil
}

func (o Options) name() string {
	if o.Name != "" {
		return o.Name
	}
	return "incumbent-fence." + o.Namespace + "." + o.Lease
}

func (o Options) operations() []string {
	if len(o.Operations) == 0 {
		return defaultOperations()
	}
	return o.Operations
}

// namespaces returns the fenced namespaces: Namespaces, or Namespace.
func (o Options) namespaces() []string {
	if len(o.Namespaces) == 0 {
		return []string{o.Namespace}
	}
	return o.Namespaces
}
