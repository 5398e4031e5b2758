package rbac

import (
	"fmt"
	"strconv"
	"strings"
)

// FenceInstallerRole names the ClusterRole FenceInstallerYAML prints.
const FenceInstallerRole = "incumbent-fence-installer"

// FenceInstallerRules are the permissions a user needs to apply what
// incumbent fence prints: the policies and bindings are cluster-scoped,
// and the API server lets a user create a policy whose parameter is a Lease
// only if that user may get every Lease, and a binding that selects Leases
// (the anchor's) only if that user may list them. The sidecar
// needs none of them.
func FenceInstallerRules() []Rule {
	return []Rule{
		{
			APIGroup: "admissionregistration.k8s.io", Resource: "validatingadmissionpolicies",
			Verbs: []string{"get", "list", "create", "update", "patch", "delete"},
			Why:   []string{"Apply (and remove) the fence's ValidatingAdmissionPolicy and the anchor's."},
		},
		{
			APIGroup: "admissionregistration.k8s.io", Resource: "validatingadmissionpolicybindings",
			Verbs: []string{"get", "list", "create", "update", "patch", "delete"},
			Why:   []string{"Apply (and remove) their bindings."},
		},
		{
			APIGroup: "coordination.k8s.io", Resource: "leases", Verbs: []string{"get", "list"},
			Why: []string{
				"The API server refuses a policy whose paramKind is Lease to a user who may not",
				"get every Lease, and a binding to one who may not read the Leases it names",
				"(the anchor's names them by a selector: list).",
			},
		},
	}
}

// FenceInstallerYAML returns, as comments, what an operator must add to
// install the fence, then a ClusterRole with FenceInstallerRules, for an
// administrator to bind to whoever runs kubectl apply on the fence.
func FenceInstallerYAML() string {
	var b strings.Builder
	b.WriteString(`---
# The fence (incumbent fence) is cluster-scoped: a ValidatingAdmissionPolicy and its
# binding, plus an anchor pair. The sidecar needs no permission for it: an operator applies
# them, as cluster-admin or as a user bound to this ClusterRole, for example with
#   kubectl create clusterrolebinding incumbent-fence-installer \
#     --clusterrole=` + FenceInstallerRole + ` --user=YOU
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: ` + strconv.Quote(FenceInstallerRole) + `
rules:
`)
	for _, r := range FenceInstallerRules() {
		for _, w := range r.Why {
			fmt.Fprintf(&b, "  # %s\n", w)
		}
		fmt.Fprintf(&b, "  - apiGroups: [%s]\n    resources: [%s]\n    verbs: [%s]\n", strconv.Quote(r.APIGroup), strconv.Quote(r.Resource), list(r.Verbs))
	}
	return b.String()
}
