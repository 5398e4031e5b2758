package rbac

import (
	"fmt"
	"strconv"
	"strings"
)

// YAML returns the ServiceAccount, Role and RoleBinding for o as a
// multi-document YAML stream with comments explaining each rule. header
// lines (for example the command that generated it) are written first as
// comments. With ExistingServiceAccount the ServiceAccount is left out.
//
// An empty Namespace leaves every namespace out: the objects go where they
// are applied (kubectl's context, helm install -n), and the RoleBinding's
// subject then names the ServiceAccount of the binding's own namespace, as
// the RBAC authorizer reads a subject without a namespace.
func YAML(o Options, header ...string) (string, error) {
	if err := o.validate(false); err != nil {
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
	ns := func(indent string) string {
		if o.Namespace == "" {
			return ""
		}
		return indent + "namespace: " + q(o.Namespace) + "\n"
	}
	if !o.ExistingServiceAccount {
		fmt.Fprintf(&b, `apiVersion: v1
kind: ServiceAccount
metadata:
  name: %s
%s---
`, q(o.ServiceAccount), ns("  "))
	}
	fmt.Fprintf(&b, `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: %s
%srules:
`, q(o.roleName()), ns("  "))
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
%sroleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: %s
subjects:
  - kind: ServiceAccount
    name: %s
%s`, q(o.roleName()), ns("  "), q(o.roleName()), q(o.ServiceAccount), ns("    "))
	return b.String(), nil
}

func list(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}
