package rbac

import (
	"fmt"
	"strconv"
	"strings"
)

// YAML returns the ServiceAccount, Role and RoleBinding for o as a
// multi-document YAML stream with comments explaining each rule. header
// lines (for example the command that generated it) are written first as
// comments.
func YAML(o Options, header ...string) (string, error) {
	if err := o.Validate(); err != nil {
		return "", err
	}
	if o.ServiceAccount == "" {
		return "", fmt.Errorf("a service account name is required")
	}
	var b strings.Builder
	for _, h := range header {
		fmt.Fprintf(&b, "# %s\n", h)
	}
	q := strconv.Quote
	fmt.Fprintf(&b, `apiVersion: v1
kind: ServiceAccount
metadata:
  name: %s
  namespace: %s
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: %s
  namespace: %s
rules:
`, q(o.ServiceAccount), q(o.Namespace), q(o.roleName()), q(o.Namespace))
	for _, r := range Rules(o) {
		for _, w := range r.Why {
			fmt.Fprintf(&b, "  # %s\n", w)
		}
		fmt.Fprintf(&b, "  - apiGroups: [%s]\n    resources: [%s]\n", q(r.APIGroup), q(r.Resource))
		if len(r.ResourceNames) > 0 {
			fmt.Fprintf(&b, "    resourceNames: [%s]\n", list(r.ResourceNames))
		}
		fmt.Fprintf(&b, "    verbs: [%s]\n", list(r.Verbs))
	}
	fmt.Fprintf(&b, `---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: %s
  namespace: %s
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: %s
subjects:
  - kind: ServiceAccount
    name: %s
    namespace: %s
`, q(o.roleName()), q(o.Namespace), q(o.roleName()), q(o.ServiceAccount), q(o.Namespace))
	return b.String(), nil
}

func list(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}
