package examples

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/incumbent-io/incumbent/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

func TestFilesAreUpToDate(t *testing.T) {
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 {
		t.Errorf("%d examples, want one per mode (4)", len(files))
	}
	for name, want := range files {
		got, err := os.ReadFile(name)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is not what the generator writes (%v): run go generate ./deploy/examples", name, err)
		}
	}
}

// decode splits a manifest and decodes each document strictly (unknown or
// duplicate fields fail) into its typed object.
func decode(t *testing.T, doc []byte) []runtime.Object {
	t.Helper()
	s := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme.Scheme, scheme.Scheme,
		kjson.SerializerOptions{Yaml: true, Strict: true})
	var objs []runtime.Object
	for i, part := range strings.Split(string(doc), "\n---\n") {
		obj, _, err := s.Decode([]byte(part), nil, nil)
		if err != nil {
			t.Fatalf("document %d: %v\n%s", i, err, part)
		}
		objs = append(objs, obj)
	}
	return objs
}

// TestManifestsAreValid decodes every object strictly and has the API
// server validate it (server-side dry run), and checks that each
// Deployment's incumbent runs on the Lease its Role names.
func TestManifestsAreValid(t *testing.T) {
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	for name, doc := range files {
		t.Run(name, func(t *testing.T) {
			var lease string
			var args, resources []string
			for _, obj := range decode(t, doc) {
				var err error
				switch o := obj.(type) {
				case *corev1.ServiceAccount:
					_, err = cs.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, dry)
				case *rbacv1.Role:
					_, err = cs.RbacV1().Roles(o.Namespace).Create(ctx, o, dry)
					lease = o.Rules[0].ResourceNames[0]
					for _, r := range o.Rules {
						resources = append(resources, r.Resources...)
					}
				case *rbacv1.RoleBinding:
					_, err = cs.RbacV1().RoleBindings(o.Namespace).Create(ctx, o, dry)
				case *appsv1.Deployment:
					_, err = cs.AppsV1().Deployments(o.Namespace).Create(ctx, o, dry)
					for _, c := range append(o.Spec.Template.Spec.InitContainers, o.Spec.Template.Spec.Containers...) {
						if slices.Contains(c.Args, "run") || slices.Contains(c.Command, "incumbent") {
							args = append(c.Command, c.Args...)
						}
					}
					if o.Spec.Template.Spec.ServiceAccountName == "" {
						t.Error("the Deployment does not run as the generated service account")
					}
				case *corev1.Service:
					_, err = cs.CoreV1().Services(o.Namespace).Create(ctx, o, dry)
				case *policyv1.PodDisruptionBudget:
					_, err = cs.PolicyV1().PodDisruptionBudgets(o.Namespace).Create(ctx, o, dry)
				default:
					t.Fatalf("unexpected object %T", obj)
				}
				if err != nil {
					t.Errorf("the API server rejects %T: %v", obj, err)
				}
			}
			if lease == "" || !slices.Contains(args, "--lease="+lease) {
				t.Errorf("incumbent arguments %q do not name the Role's lease %q", args, lease)
			}
			// The Role grants exactly what the flags use.
			if slices.Contains(args, "--label-pod") != slices.Contains(resources, "pods") ||
				slices.Contains(args, "--events") != slices.Contains(resources, "events") {
				t.Errorf("incumbent arguments %q and Role resources %q disagree", args, resources)
			}
		})
	}
}
