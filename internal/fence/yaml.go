package fence

import (
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/incumbent-io/incumbent/store/kube"
)

// YAML returns the policy and its binding as a two-document YAML stream for
// kubectl apply -f -, after header lines (for example the command that
// generated it) and a few lines saying what the policy does, as comments.
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
		fmt.Fprintf(&b, "# %s\n", h)
	}
	var res []string
	for _, r := range o.Resources {
		res = append(res, r.String())
	}
	fmt.Fprintf(&b, `# The API server refuses %s of %s by service account %s/%s
# unless the request comes from the pod that holds lease %s/%s: the pod UID the
# holder recorded on the Lease (%s), else its name%s.
# A released Lease refuses every one; reads and other users are never refused.
# Cluster-scoped objects: an administrator applies them (see incumbent rbac --fence).
`, strings.Join(o.operations(), ", "), strings.Join(res, ", "), o.Namespace, o.ServiceAccount, o.Namespace, o.Lease,
		kube.AnnotationHolderPodUID, fallback)
	for i, obj := range []any{policy, binding} {
		out, err := yaml.Marshal(obj)
		if err != nil {
			return "", fmt.Errorf("fence: render YAML: %w", err)
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.WriteString(strings.TrimSuffix(string(out), "status: {}\n"))
	}
	return b.String(), nil
}
