package fence

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AnchorName names the anchor policy and binding (see Anchor).
const AnchorName = "incumbent-fence-anchor"

// Anchor returns a policy and binding that take Leases as their parameter
// and match no request (a resource that does not exist), to be kept for the
// life of the cluster. They work around a kube-apiserver defect
// (kubernetes/kubernetes#130887, still in v1.37.2): when the last binding
// of a policy whose parameter is a built-in kind goes away, each API server
// stops its informer of that kind for good, and every policy bound later
// is judged against the frozen copy until the API server restarts: a
// stale holder's writes admitted, or a new holder's refused. While the
// anchor is bound, removing the last fence does not stop the informer.
// Every fence YAML prints it; it is the same object each time.
func Anchor() (*admissionregistrationv1.ValidatingAdmissionPolicy, *admissionregistrationv1.ValidatingAdmissionPolicyBinding) {
	ignore := admissionregistrationv1.Ignore
	allow := admissionregistrationv1.AllowAction
	labels := map[string]string{"app.kubernetes.io/part-of": "incumbent"}
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: AnchorName, Labels: labels},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &ignore,
			ParamKind:     &admissionregistrationv1.ParamKind{APIVersion: "coordination.k8s.io/v1", Kind: "Lease"},
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
					Rule: admissionregistrationv1.Rule{APIGroups: []string{"incumbent.io"}, APIVersions: []string{"*"},
						Resources: []string{"no-such-resource"}},
				},
			}}},
			Validations: []admissionregistrationv1.Validation{{Expression: "true"}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicyBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: AnchorName, Labels: labels},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName: AnchorName,
			ParamRef: &admissionregistrationv1.ParamRef{Selector: &metav1.LabelSelector{},
				ParameterNotFoundAction: &allow},
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Audit},
		},
	}
	return policy, binding
}
