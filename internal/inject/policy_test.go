package inject

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// policyPod is the Pod the policy tests create, labelled for lease.
func policyPod(lease, extra string) string {
	return `apiVersion: v1
kind: Pod
metadata:
  name: app
  labels: {app: demo, incumbent.io/lease: ` + lease + `}
spec:
` + extra + `  containers:
    - name: app
      image: registry.example/app:1
      ports: [{name: http, containerPort: 8080}]
`
}

// TestPolicyInjectsWhatInjectWrites applies the admission policy of each
// mode to a real API server, creates a labelled Pod, reads it back, and
// finds its spec exactly as the API server makes of the Pod that inject
// writes for the same manifest; a Pod injected already is left alone, an
// unlabelled one untouched, and what inject refuses is refused with the
// reason.
func TestPolicyInjectsWhatInjectWrites(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	for _, mode := range []Mode{Status, Labels, LeaderPort} {
		t.Run(string(mode), func(t *testing.T) {
			lease := "policy-" + string(mode)
			o := Options{Lease: lease, Mode: mode, Events: mode == Labels, NoService: true, NoPDB: true}
			on, off := lease, lease+"-off"
			c.namespace(t, on, nil)
			c.namespace(t, off, nil)
			out, err := Policy(o, []string{on})
			if err != nil {
				t.Fatal(err)
			}
			for _, obj := range objects(t, out) {
				if _, err := c.create(ctx, obj, on, false); err != nil {
					t.Fatalf("the API server refuses the policy's %s %s: %v", obj.GetKind(), obj.GetName(), err)
				}
			}
			pod := objects(t, []byte(policyPod(lease, "")))[0]

			// The policies take effect once the API server has loaded them:
			// until a dry run comes back with the sidecar, and one of a pod on
			// the host's network is refused.
			eventually(t, "the mutating policy takes effect", func() bool {
				got, err := c.create(ctx, pod, on, true)
				if err != nil {
					t.Fatal(err)
				}
				return sidecarOf(t, got) != nil
			})
			hostPod := objects(t, []byte(policyPod(lease, "  hostNetwork: true\n")))[0]
			eventually(t, "the validating policy takes effect", func() bool {
				_, err := c.create(ctx, hostPod, on, true)
				return err != nil
			})
			created, err := c.create(ctx, pod, on, false)
			if err != nil {
				t.Fatal(err)
			}
			read, err := c.cs.CoreV1().Pods(on).Get(ctx, "app", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if read.UID != created.GetUID() {
				t.Fatalf("read back another pod")
			}

			// What inject writes for the same manifest, as the API server
			// makes of it where no policy applies.
			injected, err := Inject(withoutServiceAndBudget(o), Input{Name: "pod.yaml", Data: []byte(policyPod(lease, ""))})
			if err != nil {
				t.Fatal(err)
			}
			var manifest *unstructured.Unstructured
			for _, obj := range objects(t, injected) {
				if obj.GetKind() == "Pod" {
					manifest = obj
				}
			}
			viaInject, err := c.create(ctx, manifest, off, true)
			if err != nil {
				t.Fatal(err)
			}
			want := podSpec(t, viaInject)
			if !reflect.DeepEqual(read.Spec, want) {
				t.Errorf("the policy's pod differs from inject's:\npolicy: %+v\ninject: %+v", read.Spec, want)
			}
			if sc := sidecarOf(t, created); sc == nil || sc.Image != o.withImage() {
				t.Errorf("the policy's sidecar: %+v", sc)
			}
			if read.Spec.ServiceAccountName != "incumbent-"+lease {
				t.Errorf("the pod runs as %q", read.Spec.ServiceAccountName)
			}

			// A manifest injected already: the policy adds nothing.
			manifest.SetName("app-injected")
			again, err := c.create(ctx, manifest, on, true)
			if err != nil {
				t.Fatal(err)
			}
			if got := podSpec(t, again); !reflect.DeepEqual(got, want) {
				t.Errorf("the policy changed an injected pod:\n%+v\nwant %+v", got, want)
			}
			// A pod without the label: untouched.
			plainPod := pod.DeepCopy()
			plainPod.SetLabels(map[string]string{"app": "demo"})
			plainPod.SetName("app-unlabelled")
			got, err := c.create(ctx, plainPod, on, true)
			if err != nil {
				t.Fatal(err)
			}
			if sidecarOf(t, got) != nil {
				t.Error("the policy injected a pod without the label")
			}
			// What cannot be injected is refused, with the reason.
			for _, bad := range []struct{ extra, want string }{
				{"  hostNetwork: true\n", "runs on the host's network"},
				{"  initContainers:\n    - {name: incumbent, image: ghcr.io/incumbent-io/incumbent:v0.0.1, restartPolicy: Always}\n", "from another incumbent than"},
			} {
				badPod := objects(t, []byte(policyPod(lease, bad.extra)))[0]
				badPod.SetName("app-refused")
				_, err := c.create(ctx, badPod, on, true)
				if err == nil || !strings.Contains(err.Error(), bad.want) {
					t.Errorf("a pod with\n%s: %v, want it refused saying %q", bad.extra, err, bad.want)
				}
			}
		})
	}
}

// eventually polls cond, an observable state of the API server, every
// 100ms until it holds, and fails the test after 60s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 60s", what)
		}
		<-tick.C
	}
}

func withoutServiceAndBudget(o Options) Options {
	o.NoService, o.NoPDB = true, true
	return o
}

func (o Options) withImage() string {
	if err := o.complete(); err != nil {
		return ""
	}
	return o.Image
}

// podSpec converts a Pod's spec from unstructured.
func podSpec(t *testing.T, u *unstructured.Unstructured) corev1.PodSpec {
	t.Helper()
	var p corev1.Pod
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &p); err != nil {
		t.Fatal(err)
	}
	return p.Spec
}

// sidecarOf returns a Pod's incumbent init container, or nil.
func sidecarOf(t *testing.T, u *unstructured.Unstructured) *corev1.Container {
	t.Helper()
	spec := podSpec(t, u)
	for i, c := range spec.InitContainers {
		if c.Name == ContainerName {
			return &spec.InitContainers[i]
		}
	}
	return nil
}
