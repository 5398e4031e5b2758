package kube_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/kube"
)

// TestPodUIDIsRecordedWithEveryHeldWrite follows one Lease through an
// acquisition, a renewal, an operator's write, a client-go style take-over
// and a release, and checks the holder's pod UID annotation after each.
func TestPodUIDIsRecordedWithEveryHeldWrite(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	leases := admin.CoordinationV1().Leases(namespace)
	const name, uid = "pod-uid", "0b9e2a4c-6f1d-4e2b-9a3e-5c7d8e9f0a1b"
	candidate, err := kube.New(env.Config, namespace, name, kube.Options{PodUID: uid})
	if err != nil {
		t.Fatal(err)
	}
	operator, err := kube.New(env.Config, namespace, name, kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	check := func(step, wantAnnotation, wantUID string) {
		t.Helper()
		l, err := leases.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		got, ok := l.Annotations[kube.AnnotationHolderPodUID]
		if wantAnnotation == "" && ok {
			t.Errorf("%s: annotation %s = %q, want none", step, kube.AnnotationHolderPodUID, got)
		}
		if wantAnnotation != "" && got != wantAnnotation {
			t.Errorf("%s: annotation %s = %q, want %q", step, kube.AnnotationHolderPodUID, got, wantAnnotation)
		}
		if u := kube.HolderPodUID(l); u != wantUID {
			t.Errorf("%s: HolderPodUID = %q, want %q", step, u, wantUID)
		}
	}
	rec := store.Record{Holder: "a", Instance: "i", LeaseDuration: 15 * time.Second, Transitions: 3}
	got, err := candidate.Create(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	check("acquired", uid+"/3", uid)

	got.Term = got.Revision
	if got, err = candidate.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	check("renewed", uid+"/3", uid)

	got.ReleaseRequested = true
	if got, err = operator.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	check("an operator's write (no pod UID given)", uid+"/3", uid)

	// A client-go candidate takes over: it keeps the annotations it does
	// not know, and raises leaseTransitions.
	l, err := leases.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other, transitions := "client-go-b", int32(4)
	l.Spec.HolderIdentity, l.Spec.LeaseTransitions = &other, &transitions
	if _, err := leases.Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	check("taken over by client-go", uid+"/3", "")

	got, err = candidate.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got.Holder, got.Instance, got.Transitions, got.ReleaseRequested = "a", "i", 5, false
	if got, err = candidate.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	check("acquired again", uid+"/5", uid)

	got.Holder, got.Instance = "", ""
	if _, err = candidate.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	check("released", "", "")
}

func TestNewRefusesAMalformedPodUID(t *testing.T) {
	for _, uid := range []string{"a/b", "has space", strings.Repeat("x", 64)} {
		_, err := kube.New(env.Config, namespace, "x", kube.Options{PodUID: uid})
		if err == nil || !strings.Contains(err.Error(), "pod UID") {
			t.Errorf("New with PodUID %q: error %v, want one naming the pod UID", uid, err)
		}
	}
}
