package kube

import (
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/incumbent-io/incumbent/store"
)

// clientGoAcquire changes l as client-go's LeaseLock does when another
// identity acquires it: the spec fields, leaseTransitions one up, and the
// annotations left as they are.
func clientGoAcquire(l *coordinationv1.Lease, id string) {
	now := metav1.NewMicroTime(time.Now())
	secs := int32(15)
	tr := *l.Spec.LeaseTransitions + 1
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds = &id, &secs
	l.Spec.AcquireTime, l.Spec.RenewTime, l.Spec.LeaseTransitions = &now, &now, &tr
}

// The holder's kind, through the life of a Lease shared by incumbent and
// client-go candidates, each state written as the election (through apply)
// or client-go writes it.
func TestKindOf(t *testing.T) {
	now := time.Now()
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default", ResourceVersion: "10"}}
	check := func(step string, want HolderKind) {
		t.Helper()
		if got := KindOf(l); got != want {
			t.Errorf("%s: KindOf = %q, want %q (annotations %v, transitions %d)", step, got, want, l.Annotations, *l.Spec.LeaseTransitions)
		}
	}
	// An incumbent candidate acquires: instance, no term yet.
	apply(l, store.Record{Holder: "a", Instance: "0123456789abcdef", LeaseDuration: 15 * time.Second,
		AcquireTime: now, RenewTime: now, Transitions: 1})
	check("incumbent acquired, term not yet recorded", HolderIncumbent)
	// Its first renewal records the term.
	apply(l, store.Record{Holder: "a", Instance: "0123456789abcdef", LeaseDuration: 15 * time.Second,
		AcquireTime: now, RenewTime: now, Transitions: 1, Term: 10})
	check("incumbent renewed", HolderIncumbent)
	// It stops without releasing; a client-go candidate takes over after
	// the lease duration and keeps the annotations.
	clientGoAcquire(l, "b")
	if l.Annotations[AnnotationInstance] == "" || l.Annotations[AnnotationTerm] == "" {
		t.Fatalf("the takeover lost the stale annotations: %v", l.Annotations)
	}
	check("client-go took over from incumbent", HolderClientGo)
	// An incumbent candidate takes it back.
	apply(l, store.Record{Holder: "c", Instance: "fedcba9876543210", LeaseDuration: 15 * time.Second,
		AcquireTime: now, RenewTime: now, Transitions: 3})
	check("incumbent took it back", HolderIncumbent)
	// And releases it.
	apply(l, store.Record{LeaseDuration: time.Second, AcquireTime: now, RenewTime: now, Transitions: 3})
	check("released", HolderNone)
	// A Lease only client-go ever wrote.
	l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "cg", Namespace: "default", ResourceVersion: "11"}}
	zero := int32(0)
	l.Spec.LeaseTransitions = &zero
	clientGoAcquire(l, "x")
	check("client-go only", HolderClientGo)
	// A term annotation that cannot be read, beside an instance.
	l.Annotations = map[string]string{AnnotationInstance: "0123456789abcdef", AnnotationTerm: "garbage"}
	check("unreadable term", HolderClientGo)
}
