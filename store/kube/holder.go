package kube

import coordinationv1 "k8s.io/api/coordination/v1"

// HolderKind says which kind of candidate holds a Lease; see KindOf.
type HolderKind string

// Kinds of holder.
const (
	// HolderNone: nobody holds the Lease (released, or never taken).
	HolderNone HolderKind = ""
	// HolderIncumbent: an incumbent candidate holds the Lease.
	HolderIncumbent HolderKind = "incumbent"
	// HolderClientGo: a candidate that writes the Lease as client-go's
	// LeaseLock does, without incumbent's annotations: client-go's
	// leaderelection and what is built on it (controller-runtime,
	// kube-controller-manager, kube-scheduler), or any other writer of the
	// format.
	HolderClientGo HolderKind = "client-go"
)

// KindOf tells an incumbent holder from a client-go one by the annotations
// an incumbent holder writes: AnnotationInstance with its acquisition, and
// AnnotationTerm ("TOKEN/TRANSITIONS") with its first renewal, which follows
// at once. A client-go candidate writes neither, but it keeps annotations it
// does not know: a Lease it took over from an incumbent holder still carries
// both. Its acquisition raised leaseTransitions, though, so the term
// annotation no longer names the current transitions (RecordOf reads Term
// 0). Hence, for a held Lease:
//
//   - no instance annotation: client-go;
//   - an instance annotation and a term annotation of the current
//     leaseTransitions: incumbent;
//   - an instance annotation and a term annotation of other transitions (or
//     one that cannot be read): client-go, which took the Lease over and
//     kept the stale annotations;
//   - an instance annotation and no term annotation: incumbent, between its
//     acquisition and its first renewal.
//
// Two cases read wrong, both outside incumbent's assumptions: a client-go
// candidate that took over from an incumbent holder that had stopped
// between its acquisition and its first renewal (the last case), and a
// client-go candidate that uses the identity of the incumbent holder before
// it (client-go then renews instead of acquiring, and leaseTransitions does
// not move). Identities must be unique among the candidates of a Lease in
// any case.
func KindOf(l *coordinationv1.Lease) HolderKind {
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
		return HolderNone
	}
	if l.Annotations[AnnotationInstance] == "" {
		return HolderClientGo
	}
	if _, ok := l.Annotations[AnnotationTerm]; !ok {
		return HolderIncumbent // acquired; the first renewal records the term
	}
	if RecordOf(l).Term > 0 {
		return HolderIncumbent
	}
	return HolderClientGo
}
