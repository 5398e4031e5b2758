package kubeclient

import (
	"context"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/incumbent-io/incumbent/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

func TestCallsAgainstARealAPIServer(t *testing.T) {
	ctx := context.Background()
	c, err := New(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	pods := c.Pods("default")
	if _, err := pods.Get(ctx, "kc-missing", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("get of a missing pod = %v, want NotFound", err)
	}
	// Create through the same REST client, as the API expects it.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "kc-a", Labels: map[string]string{"app": "kc"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app"}}}}
	created := &corev1.Pod{}
	if err := c.core.Post().Namespace("default").Resource("pods").Body(pod).Do(ctx).Into(created); err != nil {
		t.Fatal(err)
	}
	got, err := pods.Get(ctx, "kc-a", metav1.GetOptions{})
	if err != nil || got.UID != created.UID {
		t.Fatalf("get: %v, %v", got.UID, err)
	}
	list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "app=kc"})
	if err != nil || len(list.Items) != 1 || list.Items[0].Name != "kc-a" {
		t.Fatalf("list: %+v, %v", list, err)
	}
	patched, err := pods.Patch(ctx, "kc-a", types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`), metav1.PatchOptions{})
	if err != nil || patched.Labels["x"] != "y" {
		t.Fatalf("patch: %v, %v", patched.Labels, err)
	}
	stale := []byte(`{"metadata":{"resourceVersion":"` + created.ResourceVersion + `","labels":{"x":"z"}}}`)
	if _, err := pods.Patch(ctx, "kc-a", types.MergePatchType, stale, metav1.PatchOptions{}); !apierrors.IsConflict(err) {
		t.Fatalf("patch on a stale resourceVersion = %v, want Conflict", err)
	}
	ev, err := c.Events("default").Create(ctx, &corev1.Event{ObjectMeta: metav1.ObjectMeta{GenerateName: "kc-a."},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "kc-a", Namespace: "default"}, Reason: "Test", Message: "hello",
		Type: corev1.EventTypeNormal}, metav1.CreateOptions{})
	if err != nil || ev.Name == "" || ev.Message != "hello" {
		t.Fatalf("event: %+v, %v", ev, err)
	}
	review, err := c.SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: "default", Verb: "patch", Resource: "pods"}}}, metav1.CreateOptions{})
	if err != nil || !review.Status.Allowed {
		t.Fatalf("access review as the administrator: %+v, %v", review.Status, err)
	}

	nobody, err := env.User("kubeclient-nobody")
	if err != nil {
		t.Fatal(err)
	}
	u, err := New(nobody)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Pods("default").Get(ctx, "kc-a", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("get without permission = %v, want Forbidden", err)
	}
	review, err = u.SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: "default", Verb: "get", Resource: "pods"}}}, metav1.CreateOptions{})
	if err != nil || review.Status.Allowed {
		t.Errorf("access review of a user without rights: %+v, %v", review.Status, err)
	}
	if _, err := New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
}

// Leases list in one namespace and in all; namespaces list.
func TestListLeasesAndNamespaces(t *testing.T) {
	ctx := context.Background()
	c, err := New(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"kc-leases-a", "kc-leases-b"} {
		if err := c.core.Post().Resource("namespaces").Body(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}).Do(ctx).Error(); err != nil {
			t.Fatal(err)
		}
		l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "kc-lease"}}
		if err := c.coord.Post().Namespace(ns).Resource("leases").Body(l).Do(ctx).Error(); err != nil {
			t.Fatal(err)
		}
	}
	one, err := c.Leases("kc-leases-a").List(ctx, metav1.ListOptions{})
	if err != nil || len(one.Items) != 1 || one.Items[0].Namespace != "kc-leases-a" {
		t.Fatalf("list in one namespace: %+v, %v", one, err)
	}
	all, err := c.Leases("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, l := range all.Items {
		found[l.Namespace+"/"+l.Name] = true
	}
	if !found["kc-leases-a/kc-lease"] || !found["kc-leases-b/kc-lease"] {
		t.Errorf("list in all namespaces lacks a lease: %v", found)
	}
	nss, err := c.Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, n := range nss.Items {
		names[n.Name] = true
	}
	if !names["kc-leases-a"] || !names["default"] {
		t.Errorf("namespaces: %v", names)
	}
}
