package inject

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/incumbent-io/incumbent/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// cluster creates any object of a YAML stream in the real API server.
type cluster struct {
	cs     *kubernetes.Clientset
	dyn    *dynamic.DynamicClient
	mapper meta.RESTMapper
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{cs: cs, dyn: dyn,
		mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(cs.Discovery()))}
}

// objects decodes every object of a YAML stream, the items of Lists in
// their place.
func objects(t *testing.T, stream []byte) []*unstructured.Unstructured {
	t.Helper()
	docs, err := parseStream(Input{Name: "output", Data: stream})
	if err != nil {
		t.Fatal(err)
	}
	var out []*unstructured.Unstructured
	for _, ob := range collect(docs) {
		v, err := plain(ob.node)
		if err != nil {
			t.Fatal(err)
		}
		b, err := yaml.Marshal(jsonable(v))
		if err != nil {
			t.Fatal(err)
		}
		var u unstructured.Unstructured
		if err := yaml.Unmarshal(b, &u.Object); err != nil {
			t.Fatalf("%s: %v", ob.where(), err)
		}
		out = append(out, &u)
	}
	return out
}

// namespace creates a namespace for a test (once per name).
func (c *cluster) namespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	_, err := c.cs.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
}

// create creates obj (in ns when it names none), as a server-side dry run
// when dryRun, with strict field validation, and returns what the API
// server made of it.
func (c *cluster) create(ctx context.Context, obj *unstructured.Unstructured, ns string, dryRun bool) (*unstructured.Unstructured, error) {
	gvk := obj.GroupVersionKind()
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", gvk, err)
	}
	opts := metav1.CreateOptions{FieldValidation: "Strict"}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var ri dynamic.ResourceInterface = c.dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if obj.GetNamespace() != "" {
			ns = obj.GetNamespace()
		}
		ri = c.dyn.Resource(m.Resource).Namespace(ns)
	}
	return ri.Create(ctx, obj, opts)
}
