package inject

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Policy returns a MutatingAdmissionPolicy (admissionregistration.k8s.io/v1,
// GA since Kubernetes 1.36: the API server runs it, no webhook server) and
// its binding, which add incumbent to every Pod created with the label
// incumbent.io/lease=<lease> in the given namespaces, exactly as Inject
// writes it into a manifest; a ValidatingAdmissionPolicy and its binding,
// which refuse such a Pod when it cannot be (on the host's network, or with
// another incumbent already); and, unless o.RBAC is RBACExclude, the RBAC
// objects of each namespace. Exec mode is refused: it rewrites a
// container's command, which only a manifest says.
//
// A Pod that names no service account (or the default one) runs as
// incumbent-<lease>, which the RBAC objects include; a Pod that names its
// own keeps it, and needs `incumbent rbac --service-account` for it.
func Policy(o Options, namespaces []string) ([]byte, error) {
	if err := o.complete(); err != nil {
		return nil, err
	}
	switch {
	case len(o.Leases) > 1:
		return nil, fmt.Errorf("an admission policy selects Pods by their %s label, which holds one lease name, and --lease names %d (%s): inject the manifests instead for a sidecar of several leases", LeaseLabel, len(o.Leases), strings.Join(o.Leases, ", "))
	case o.Mode == Exec:
		return nil, fmt.Errorf("an admission policy adds the sidecar of the status, labels and leader-port modes; --mode exec rewrites a container's command, which only its manifest says: inject the manifest instead")
	case o.Mode == Labels && !(o.NoService && o.NoPDB):
		return nil, fmt.Errorf("an admission policy changes Pods only: write the leader Service and PodDisruptionBudget of the label mode with the workload (inject its manifest), and give --service=false --pdb=false here")
	case len(o.Workloads) > 0 || o.Container != "":
		return nil, fmt.Errorf("--workload and --container choose within manifests; the policy selects Pods by their %s label", LeaseLabel)
	case o.RBAC == RBACKeep:
		return nil, fmt.Errorf("--rbac=keep is for Helm; the policy's objects are applied with kubectl")
	case len(namespaces) == 0:
		return nil, fmt.Errorf("--policy needs the namespaces it applies in (-n NS, repeatable): the RBAC objects are namespaced")
	}
	for i, ns := range namespaces {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			return nil, fmt.Errorf("invalid namespace %q: %s", ns, msgs[0])
		}
		if slices.Contains(namespaces[:i], ns) {
			return nil, fmt.Errorf("namespace %s is given twice", ns)
		}
	}
	var objs []*yaml.Node
	if o.RBAC != RBACExclude {
		for _, ns := range namespaces {
			r, err := o.rbacObjects(ns, account{name: o.ownName(), own: true})
			if err != nil {
				return nil, err
			}
			objs = append(objs, r...)
		}
	}
	if o.RBAC != RBACOnly {
		p, err := o.policyObjects(namespaces)
		if err != nil {
			return nil, err
		}
		objs = append(objs, p...)
	}
	var docs []*document
	for _, n := range objs {
		docs = append(docs, newDocument(n))
	}
	var b bytes.Buffer
	if err := writeStream(&b, docs); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// policyTemplate is the four admission objects; the CEL of the mutations
// is filled in afterwards.
const policyTemplate = `# Adds incumbent to every Pod created with the label {{.Label}}={{.Lease}}
# in the namespaces of its binding, as "incumbent inject --lease {{.Lease}}
# --mode {{.Mode}}" writes it into a manifest. A Pod that has incumbent
# already (a manifest inject wrote) is left as it is.
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata:
  name: {{.Name}}
  labels: {"{{.Label}}": {{.Lease}}}
spec:
  matchConstraints:
    resourceRules:
      - apiGroups: [""]
        apiVersions: [v1]
        operations: [CREATE]
        resources: [pods]
  matchConditions:
    - name: not-injected
      expression: {{q .NotInjected}}
{{- if not .HostNetwork}}
    # Refused by the validating policy below instead.
    - name: not-host-network
      expression: {{q .NotHostNetwork}}
{{- end}}
  mutations: []
  # A Pod that the policy cannot change is refused, not created without
  # its sidecar.
  failurePolicy: Fail
  reinvocationPolicy: Never
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicyBinding
metadata:
  name: {{.Name}}
  labels: {"{{.Label}}": {{.Lease}}}
spec:
  policyName: {{.Name}}
  matchResources: {}
---
# Refuses a Pod labelled {{.Label}}={{.Lease}} that the mutating policy
# cannot give incumbent, with the reason, as incumbent inject refuses its
# manifest.
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: {{.Name}}
  labels: {"{{.Label}}": {{.Lease}}}
spec:
  matchConstraints:
    resourceRules:
      - apiGroups: [""]
        apiVersions: [v1]
        operations: [CREATE]
        resources: [pods]
  validations:
{{- if not .HostNetwork}}
    - expression: {{q .NotHostNetwork}}
      message: {{q .HostNetworkMessage}}
{{- end}}
    - expression: {{q .SameVersion}}
      message: {{q .SameVersionMessage}}
    - expression: {{q .NoContainer}}
      message: {{q .NoContainerMessage}}
  failurePolicy: Fail
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: {{.Name}}
  labels: {"{{.Label}}": {{.Lease}}}
spec:
  policyName: {{.Name}}
  validationActions: [Deny]
  matchResources: {}
`

// policyObjects returns the admission policies and their bindings.
func (o *Options) policyObjects(namespaces []string) ([]*yaml.Node, error) {
	var ports []string
	ports = append(ports, strconv.Itoa(o.HTTPPort), "127.0.0.1:"+strconv.Itoa(o.ControlPort))
	if o.Mode == LeaderPort {
		ports = append(ports, strconv.Itoa(o.LeaderPort))
	}
	data := map[string]any{
		"Label": LeaseLabel, "Lease": o.Lease, "Mode": o.Mode, "Name": o.ownName(), "Container": ContainerName,
		"Image": o.Image, "HostNetwork": o.HostNetwork,
		"NotInjected": `!(has(object.spec.initContainers) && object.spec.initContainers.exists(c, c.name == "` + ContainerName + `")) && ` +
			`!object.spec.containers.exists(c, c.name == "` + ContainerName + `" || (has(c.command) && c.command.size() > 0 && c.command[0] == "` + ExecBinary + `"))`,
		"NotHostNetwork": "!(has(object.spec.hostNetwork) && object.spec.hostNetwork)",
		"SameVersion": `!has(object.spec.initContainers) || object.spec.initContainers.all(c, c.name != "` + ContainerName +
			`" || c.image == "` + o.Image + `")`,
		"SameVersionMessage": "the Pod has an init container named " + ContainerName + " from another incumbent than " + o.Image +
			": remove it, and let the policy add it",
		"NoContainer": `object.spec.containers.all(c, c.name != "` + ContainerName + `")`,
		"NoContainerMessage": "the Pod has a container named " + ContainerName +
			" among its containers (as older examples ran it): remove it, and let the policy add the sidecar",
		"HostNetworkMessage": "the Pod runs on the host's network (hostNetwork: true), so incumbent's ports " + strings.Join(ports, ", ") +
			" would be the node's own: print the policy with --host-network if they are free on every node",
	}
	text, err := expand("policy", policyTemplate, data)
	if err != nil {
		return nil, err
	}
	docs, err := parseStream(Input{Name: "policy", Data: []byte(text)})
	if err != nil {
		return nil, fmt.Errorf("internal: %w", err)
	}
	var objs []*yaml.Node
	for _, d := range docs {
		unquote(d.node)
		objs = append(objs, d.node.Content[0])
	}
	mutating := objs[0]

	// The same sidecar and volume as a manifest gets.
	sc, err := o.sidecar()
	if err != nil {
		return nil, err
	}
	var c corev1.Container
	if err := decodeStrict(sc, &c); err != nil {
		return nil, err
	}
	tn, err := o.tokenVolume()
	if err != nil {
		return nil, err
	}
	var v corev1.Volume
	if err := decodeStrict(tn, &v); err != nil {
		return nil, err
	}
	sidecar, err := celLiteral(c, "Object.spec.initContainers")
	if err != nil {
		return nil, fmt.Errorf("internal: the sidecar in CEL: %w", err)
	}
	volume, err := celLiteral(v, "Object.spec.volumes")
	if err != nil {
		return nil, fmt.Errorf("internal: the volume in CEL: %w", err)
	}
	spec := get(mutating, "spec")
	remove(spec, "variables")
	muts := get(spec, "mutations")
	muts.Style = 0
	for _, m := range []struct{ comment, expr string }{
		{"The sidecar, last of the init containers (as inject puts it).",
			appendPatch("/spec/initContainers", sidecar)},
		{"Its credentials.", appendPatch("/spec/volumes", volume)},
		{"A Pod that names no service account (or the namespace's default) runs as\nincumbent's own; one that names its own keeps it.",
			`!has(object.spec.serviceAccountName) || object.spec.serviceAccountName == "" || object.spec.serviceAccountName == "default" ?` + "\n" +
				`  [JSONPatch{op: "add", path: "/spec/serviceAccountName", value: "` + o.ownName() + `"}] :` + "\n  []"},
	} {
		n := mapping()
		n.HeadComment = "# " + strings.ReplaceAll(m.comment, "\n", "\n# ")
		set(n, "patchType", str("JSONPatch"), "")
		jp := mapping()
		set(jp, "expression", literal(m.expr), "")
		set(n, "jsonPatch", jp, "")
		muts.Content = append(muts.Content, n)
	}

	// Both bindings select the same Pods.
	for _, b := range []*yaml.Node{objs[1], objs[3]} {
		mr := path(b, "spec", "matchResources")
		mr.Style = 0
		nsSel, err := parseNode(`matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: In
    values: []`)
		if err != nil {
			return nil, err
		}
		vals := path(nsSel, "matchExpressions")
		vals = get(vals.Content[0], "values")
		vals.Style = 0
		for _, ns := range namespaces {
			vals.Content = append(vals.Content, str(ns))
		}
		set(mr, "namespaceSelector", nsSel, "")
		objSel := mapping()
		ml := mapping()
		set(ml, LeaseLabel, str(o.Lease), "")
		set(objSel, "matchLabels", ml, "")
		set(mr, "objectSelector", objSel, "")
	}
	return objs, nil
}

// appendPatch returns a JSON patch expression that appends value to the
// list at p, creating the list when the Pod has none. (CEL has no binding
// here: the value is written twice.)
func appendPatch(p, value string) string {
	return fmt.Sprintf("has(object%s) ?\n[JSONPatch{op: \"add\", path: %q, value: %s}] :\n[JSONPatch{op: \"add\", path: %q, value: [%s]}]",
		strings.ReplaceAll(p, "/", "."), p+"/-", value, p, value)
}

// unquote lets the encoder quote only the strings that need it.
func unquote(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		n.Style &^= yaml.DoubleQuotedStyle | yaml.SingleQuotedStyle
	}
	for _, c := range n.Content {
		unquote(c)
	}
}

// literal returns a string node written as a YAML literal block.
func literal(s string) *yaml.Node {
	n := str(s)
	n.Style = yaml.LiteralStyle
	return n
}
