package examples

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestFenceFiles: the status-API and exec examples have their fence beside
// them, up to date; the API server accepts every object (server-side dry
// run); each fences the service account its example's pods run as, with the
// example's Lease as parameter.
func TestFenceFiles(t *testing.T) {
	fences, err := FenceFiles()
	if err != nil {
		t.Fatal(err)
	}
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	if len(fences) != 2 || fences["exec.fence.yaml"] == nil || fences["status-api.fence.yaml"] == nil {
		t.Fatalf("fence files %v, want exec.fence.yaml and status-api.fence.yaml", keys(fences))
	}
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ar := cs.AdmissionregistrationV1()
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	for name, want := range fences {
		t.Run(name, func(t *testing.T) {
			if got, err := os.ReadFile(name); err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s is not what the generator writes (%v): run go generate ./deploy/examples", name, err)
			}
			example := strings.TrimSuffix(name, ".fence.yaml") + ".yaml"
			if !strings.Contains(string(files[example]), "# Fencing: with "+name+" applied") {
				t.Errorf("%s does not point to %s", example, name)
			}
			var policies, bindings, leases int
			for _, obj := range decode(t, want) {
				var err error
				switch o := obj.(type) {
				case *coordinationv1.Lease:
					leases++
					_, err = cs.CoordinationV1().Leases(o.Namespace).Create(context.Background(), o, dry)
					if o.Namespace != Namespace || !strings.Contains(string(files[example]), "--lease="+o.Name) {
						t.Errorf("the Lease %s/%s is not the example's", o.Namespace, o.Name)
					}
				case *admissionregistrationv1.ValidatingAdmissionPolicy:
					policies++
					_, err = ar.ValidatingAdmissionPolicies().Create(context.Background(), o, dry)
				case *admissionregistrationv1.ValidatingAdmissionPolicyBinding:
					bindings++
					_, err = ar.ValidatingAdmissionPolicyBindings().Create(context.Background(), o, dry)
					if ref := o.Spec.ParamRef; ref.Name != "" && (ref.Namespace != Namespace || !strings.Contains(string(files[example]), "--lease="+ref.Name)) {
						t.Errorf("the binding's parameter %s/%s is not the example's Lease", ref.Namespace, ref.Name)
					}
				default:
					t.Fatalf("unexpected object %T", obj)
				}
				if err != nil {
					t.Errorf("the API server rejects %T: %v", obj, err)
				}
			}
			if policies != 2 || bindings != 2 || leases != 1 {
				t.Errorf("%d policies, %d bindings and %d Leases, want the fence's and the anchor's, and the election's Lease", policies, bindings, leases)
			}
			for _, ex := range examples() {
				if ex.file == example && !strings.Contains(string(want), `"system:serviceaccount:default:`+ex.o.OwnServiceAccount()+`"`) {
					t.Errorf("the fence does not match the service account %s the example's pods run as", ex.o.OwnServiceAccount())
				}
			}
		})
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
