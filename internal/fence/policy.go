package fence

import (
	"fmt"
	"strconv"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/incumbent-io/incumbent/store/kube"
)

// Keys of a bound service-account token's user info that name its pod.
const (
	ExtraPodName = "authentication.kubernetes.io/pod-name"
	ExtraPodUID  = "authentication.kubernetes.io/pod-uid"
)

// Objects returns the policy and its binding for o, both cluster-scoped
// and named o.Name (default "incumbent-fence.<namespace>.<lease>"), or the
// error Validate reports.
func Objects(o Options) (*admissionregistrationv1.ValidatingAdmissionPolicy, *admissionregistrationv1.ValidatingAdmissionPolicyBinding, error) {
	if err := o.Validate(); err != nil {
		return nil, nil, err
	}
	fail := admissionregistrationv1.Fail
	deny := admissionregistrationv1.DenyAction
	scope := admissionregistrationv1.AllScopes
	var rules []admissionregistrationv1.NamedRuleWithOperations
	for _, r := range o.Resources {
		res := r.Resource
		if r.Subresource != "" {
			res += "/" + r.Subresource
		}
		var ops []admissionregistrationv1.OperationType
		for _, op := range o.operations() {
			ops = append(ops, admissionregistrationv1.OperationType(op))
		}
		rules = append(rules, admissionregistrationv1.NamedRuleWithOperations{
			RuleWithOperations: admissionregistrationv1.RuleWithOperations{
				Operations: ops,
				Rule: admissionregistrationv1.Rule{APIGroups: []string{r.Group}, APIVersions: []string{"*"},
					Resources: []string{res}, Scope: &scope},
			},
		})
	}
	q := strconv.Quote // CEL string literals read Go's quoting of these names
	lease := o.Namespace + "/" + o.Lease
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: o.name(), Labels: map[string]string{"incumbent.io/lease": o.Lease}},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			ParamKind:     &admissionregistrationv1.ParamKind{APIVersion: "coordination.k8s.io/v1", Kind: "Lease"},
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: rules,
				// Only the fenced namespaces: decided before the parameter is
				// looked up, so a missing Lease refuses nothing elsewhere.
				NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
					Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpIn, Values: o.namespaces()}}},
				// The election's own Lease: candidates must be able to take it,
				// and create it again when it was deleted, which is decided
				// before the missing parameter would refuse it: by name, in
				// every namespace (a rule cannot name a namespace).
				ExcludeResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					ResourceNames: []string{o.Lease},
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.OperationAll},
						Rule: admissionregistrationv1.Rule{APIGroups: []string{"coordination.k8s.io"}, APIVersions: []string{"*"},
							Resources: []string{"leases"}, Scope: &scope},
					},
				}},
			},
			MatchConditions: []admissionregistrationv1.MatchCondition{
				{Name: "the-candidates-service-account",
					Expression: "request.userInfo.username == " + q("system:serviceaccount:"+o.Namespace+":"+o.ServiceAccount)},
			},
			Variables: []admissionregistrationv1.Variable{
				{Name: "holder", Expression: `has(params.spec.holderIdentity) ? params.spec.holderIdentity : ""`},
				{Name: "transitions", Expression: "string(has(params.spec.leaseTransitions) ? params.spec.leaseTransitions : 0)"},
				{Name: "recorded", Expression: "has(params.metadata.annotations) && " + q(kube.AnnotationHolderPodUID) + " in params.metadata.annotations ? " +
					"params.metadata.annotations[" + q(kube.AnnotationHolderPodUID) + `] : ""`},
				// The recorded UID counts only for the term it was written in.
				{Name: "holderUID", Expression: `variables.holder != "" && variables.recorded.endsWith("/" + variables.transitions) ? ` +
					`variables.recorded.substring(0, variables.recorded.size() - variables.transitions.size() - 1) : ""`},
				{Name: "podName", Expression: extra(ExtraPodName)},
				{Name: "podUID", Expression: extra(ExtraPodUID)},
				{Name: "who", Expression: `variables.podName != "" ? "pod " + variables.podName + " (uid " + variables.podUID + ")" : ` +
					q("a token of service account "+o.Namespace+"/"+o.ServiceAccount+" that names no pod")},
			},
			Validations: []admissionregistrationv1.Validation{{
				Expression: holderCheck(o.RequirePodUID),
				MessageExpression: `"incumbent fence: " + variables.who + " may not " + request.operation + " " + request.resource.resource + ": " + ` +
					`(variables.holder == "" ? ` + q("lease "+lease+" has no holder (released)") + " : " +
					q("lease "+lease+" is held by ") + " + variables.holder + " +
					`(variables.holderUID != "" ? " (pod uid " + variables.holderUID + ")" : ` + q(noUIDNote(o.RequirePodUID)) + "))",
				Reason: ptr(metav1.StatusReasonForbidden),
			}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicyBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: o.name(), Labels: map[string]string{"incumbent.io/lease": o.Lease}},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName: o.name(),
			ParamRef: &admissionregistrationv1.ParamRef{Name: o.Lease, Namespace: o.Namespace,
				ParameterNotFoundAction: &deny},
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
		},
	}
	return policy, binding, nil
}

// extra reads the first value of a user-info extra key, "" when absent.
func extra(key string) string {
	k := strconv.Quote(key)
	return fmt.Sprintf(`has(request.userInfo.extra) && %s in request.userInfo.extra && size(request.userInfo.extra[%s]) > 0 ? request.userInfo.extra[%s][0] : ""`, k, k, k)
}

// holderCheck is the validation: a holder, and the request's pod is it.
func holderCheck(requireUID bool) string {
	byName := `variables.podName != "" && variables.podName == variables.holder`
	if requireUID {
		byName = "false"
	}
	return `variables.holder != "" && (variables.holderUID != "" ? variables.podUID == variables.holderUID : ` + byName + ")"
}

func noUIDNote(requireUID bool) string {
	if requireUID {
		return ", which records no pod UID (the policy requires one)"
	}
	return ", which records no pod UID: pod names compared"
}

func ptr[T any](v T) *T { return &v }

// Lease returns the election's Lease as the fence's output carries it: no
// holder, so that the policy's parameter exists from the moment the fence
// is applied (a missing one refuses every user's writes to the fenced
// resources, see Options.Namespaces). Applying it to a Lease that exists
// changes none of its fields: kubectl apply sets only what it names.
func Lease(o Options) *coordinationv1.Lease {
	return &coordinationv1.Lease{
		TypeMeta:   metav1.TypeMeta{APIVersion: "coordination.k8s.io/v1", Kind: "Lease"},
		ObjectMeta: metav1.ObjectMeta{Name: o.Lease, Namespace: o.Namespace},
	}
}
