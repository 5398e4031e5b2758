//go:build node

package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/incumbent-io/incumbent/test/node/kubenode"
)

// incumbent runs the incumbent CLI against the node as an administrator,
// with stdin, and returns its standard output.
func incumbent(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	out, err := incumbentErr(stdin, args...)
	if err != nil {
		t.Fatalf("incumbent %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func incumbentErr(stdin []byte, args ...string) ([]byte, error) {
	out, _, err := incumbentOut(stdin, args...)
	return out, err
}

// incumbentOut runs the CLI and returns its standard output and error.
func incumbentOut(stdin []byte, args ...string) (stdout []byte, stderr string, err error) {
	cmd := exec.Command(incBinary, args...)
	cmd.Env = []string{"KUBECONFIG=" + node.Kubeconfig(), "HOME=" + workDir, "PATH=/usr/bin:/bin"}
	cmd.Stdin = bytes.NewReader(stdin)
	var eb bytes.Buffer
	cmd.Stderr = &eb
	out, err := cmd.Output()
	if err != nil {
		return out, eb.String(), fmt.Errorf("%w: %s", err, eb.String())
	}
	return out, eb.String(), nil
}

// inject runs incumbent inject on manifest with the node's incumbent image.
func inject(t *testing.T, lease, mode string, manifest string, extra ...string) []byte {
	t.Helper()
	out, _ := injectWarnings(t, lease, mode, manifest, extra...)
	return out
}

// injectWarnings is inject, also returning what inject wrote to its
// standard error (its warnings).
func injectWarnings(t *testing.T, lease, mode string, manifest string, extra ...string) ([]byte, string) {
	t.Helper()
	args := append([]string{"inject", "--lease", lease, "--mode", mode, "--image", incumbentImage}, extra...)
	out, stderr, err := incumbentOut([]byte(manifest), args...)
	if err != nil {
		t.Fatalf("incumbent %s: %v", strings.Join(args, " "), err)
	}
	return out, stderr
}

// apply creates or updates (server-side apply) every object of a YAML
// stream in namespace ns. Every container gets KUBERNETES_SERVICE_HOST and
// _PORT pointing at the node's forwarder: the only change to what inject
// writes, because this cluster has no kube-proxy (see kubenode).
func apply(t *testing.T, ns string, stream []byte) []*unstructured.Unstructured {
	t.Helper()
	ctx := context.Background()
	dyn, err := dynamic.NewForConfig(node.Config())
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(node.Client().Discovery()))
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(stream), 4096)
	var objs []*unstructured.Unstructured
	for {
		var raw map[string]any
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode the manifests: %v\n%s", err, stream)
		}
		if len(raw) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: raw}
		gvk := u.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s: %v", gvk, err)
		}
		addAPIEnv(u)
		res := dyn.Resource(m.Resource)
		var ri dynamic.ResourceInterface = res
		if m.Scope.Name() == "namespace" {
			u.SetNamespace(ns)
			ri = res.Namespace(ns)
		}
		out, err := ri.Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: "node-test", Force: true})
		if err != nil {
			t.Fatalf("apply %s %s: %v", gvk.Kind, u.GetName(), err)
		}
		objs = append(objs, out)
	}
	return objs
}

// addAPIEnv sets the API server's address for pods in every container of
// a Deployment, StatefulSet or Pod.
func addAPIEnv(u *unstructured.Unstructured) {
	var spec []string
	switch u.GetKind() {
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job":
		spec = []string{"spec", "template", "spec"}
	case "Pod":
		spec = []string{"spec"}
	default:
		return
	}
	for _, list := range []string{"containers", "initContainers"} {
		cs, found, _ := unstructured.NestedSlice(u.Object, append(spec, list)...)
		if !found {
			continue
		}
		for i, c := range cs {
			cm := c.(map[string]any)
			env, _ := cm["env"].([]any)
			env = append(env,
				map[string]any{"name": "KUBERNETES_SERVICE_HOST", "value": kubenode.HostIP},
				map[string]any{"name": "KUBERNETES_SERVICE_PORT", "value": fmt.Sprint(kubenode.APIPort)})
			cm["env"] = env
			cs[i] = cm
		}
		_ = unstructured.SetNestedSlice(u.Object, cs, append(spec, list)...)
	}
}

// deployment reads a Deployment.
func deployment(t *testing.T, ns, name string) *appsv1.Deployment {
	t.Helper()
	d, err := node.Client().AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// rolledOut reports whether the Deployment's latest generation is rolled
// out to every replica and every replica is available: what kubectl
// rollout status waits for.
func rolledOut(d *appsv1.Deployment) error {
	s, want := d.Status, *d.Spec.Replicas
	switch {
	case s.ObservedGeneration < d.Generation:
		return fmt.Errorf("generation %d not observed yet", d.Generation)
	case s.UpdatedReplicas < want:
		return fmt.Errorf("%d of %d updated replicas", s.UpdatedReplicas, want)
	case s.Replicas > s.UpdatedReplicas:
		return fmt.Errorf("%d old replicas are pending termination", s.Replicas-s.UpdatedReplicas)
	case s.AvailableReplicas < s.UpdatedReplicas:
		return fmt.Errorf("%d of %d updated replicas are available", s.AvailableReplicas, s.UpdatedReplicas)
	}
	return nil
}

// restart does what kubectl rollout restart does: it stamps the pod
// template, which starts a rollout.
func restart(t *testing.T, ns, name string) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`, time.Now().Format(time.RFC3339Nano))
	if _, err := node.Client().AppsV1().Deployments(ns).Patch(context.Background(), name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("rollout restart %s: %v", name, err)
	}
}
