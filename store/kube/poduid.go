package kube

import (
	"strconv"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"

	"github.com/incumbent-io/incumbent/store"
)

// apply writes rec into l as the package function does, and, with a pod UID,
// AnnotationHolderPodUID: this pod's for a held record, none for a free one.
func (s *Store) apply(l *coordinationv1.Lease, rec store.Record) {
	apply(l, rec)
	if s.podUID == "" {
		return
	}
	if !rec.Held() {
		delete(l.Annotations, AnnotationHolderPodUID)
		return
	}
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	l.Annotations[AnnotationHolderPodUID] = s.podUID + "/" + strconv.FormatInt(int64(*l.Spec.LeaseTransitions), 10)
}

// HolderPodUID returns the UID of the holder's pod that l records in
// AnnotationHolderPodUID, if the annotation belongs to l's current term
// (its leaseTransitions) and l names a holder; "" otherwise.
func HolderPodUID(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
		return ""
	}
	var transitions int32
	if l.Spec.LeaseTransitions != nil {
		transitions = *l.Spec.LeaseTransitions
	}
	uid, of, ok := strings.Cut(l.Annotations[AnnotationHolderPodUID], "/")
	if !ok || uid == "" || of != strconv.FormatInt(int64(transitions), 10) {
		return ""
	}
	return uid
}
