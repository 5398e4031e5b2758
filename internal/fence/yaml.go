package fence

import (
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/incumbent-io/incumbent/store/kube"
)

// YAML returns the election's Lease (see Lease), the policy and its
// binding, then the anchor's (see Anchor), as a five-document YAML stream
// for kubectl apply -f -, after header lines
// (for example the command that generated it) and a few lines saying what
// the policy does, as comments.
func YAML(o Options, header ...string) (string, error) {
	policy, binding, err := Objects(o)
	if err != nil {
		return "", err
	}
	fallback := " as the holder's identity"
	if o.RequirePodUID {
		fallback = " never (RequirePodUID)"
	}
	var b strings.Builder
	for _, h := range header {
		b.WriteString(strings.TrimRight("# "+h, " ") + "\n")
	}
	var res []string
	for _, r := range o.Resources {
		res = append(res, r.String())
	}
	fmt.Fprintf(&b, `# The API server refuses %s of %s by service account %s/%s
# (in namespace %s) unless the request comes from the pod that holds lease %s/%s: the
# pod UID the holder recorded on the Lease (%s), else its name%s.
# A released Lease refuses every one; reads and other users are not refused, but while
# the Lease is missing every user's writes to them there are (the API server looks the
# Lease up before it tells users apart): the Lease comes first below.
# Cluster-scoped objects: an administrator applies them (see incumbent rbac --fence).
`, strings.Join(o.operations(), ", "), strings.Join(res, ", "), o.Namespace, o.ServiceAccount,
		strings.Join(o.namespaces(), ", "), o.Namespace, o.Lease, kube.AnnotationHolderPodUID, fallback)
	anchorPolicy, anchorBinding := Anchor()
	for i, obj := range []any{Lease(o), policy, binding, anchorPolicy, anchorBinding} {
		out, err := yaml.Marshal(obj)
		if err != nil {
			return "", fmt.Errorf("fence: render YAML: %w", err)
		}
		switch i {
		case 0:
			b.WriteString("# The election's Lease, so that the policy's parameter exists from the start; a Lease\n" +
				"# that exists keeps its holder (apply sets only the fields named here).\n")
		case 1:
			b.WriteString("---\n")
		case 3:
			fmt.Fprintf(&b, `---
# The anchor: the same in every fence, matching no request. Keep it for the life of the
# cluster (remove a fence by deleting its own two objects, %s): while it is bound, each
# API server keeps its copy of the Leases current even when no fence is left. Without it,
# removing the last fence freezes that copy until the API server restarts, and fences
# installed later judge writes by a stale holder (kubernetes/kubernetes#130887).
`, o.name())
		default:
			b.WriteString("---\n")
		}
		b.WriteString(strings.TrimSuffix(string(out), "status: {}\n"))
	}
	return b.String(), nil
}
