package fuzz

import (
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/kube"
)

// FuzzRecordOfFields builds Leases field by field, each field present or
// absent, with arbitrary values and annotations.
func FuzzRecordOfFields(f *testing.F) {
	f.Add("pod-a", true, int32(15), true, int64(1_700_000_000_000_000_000), true, int32(3), "abc123", "", "", "")
	f.Add("", false, int32(0), false, int64(0), false, int32(0), "", "", "", "")
	f.Add("x", true, int32(-5), true, int64(-1), true, int32(-7), "", "pod-b", "pod-c", "true")
	f.Add("y", true, int32(0), true, int64(1<<62), true, int32(1<<31-1), "i", "", "", "false")
	f.Add("z", true, int32(-1<<31), false, int64(0), true, int32(-1<<31), "\x00", "\xff", "", "maybe")
	f.Fuzz(func(t *testing.T, holder string, hasHolder bool, secs int32, hasSecs bool, nanos int64, hasTimes bool,
		transitions int32, instance, handoff, transfer, release string) {
		l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "7", Annotations: map[string]string{}}}
		if hasHolder {
			l.Spec.HolderIdentity = &holder
		}
		if hasSecs {
			l.Spec.LeaseDurationSeconds = &secs
		}
		if hasTimes {
			mt := metav1.NewMicroTime(time.Unix(0, nanos))
			l.Spec.AcquireTime, l.Spec.RenewTime = &mt, &mt
		}
		l.Spec.LeaseTransitions = &transitions
		for k, v := range map[string]string{kube.AnnotationInstance: instance, kube.AnnotationHandoffTo: handoff,
			kube.AnnotationTransferTo: transfer, kube.AnnotationReleaseRequested: release} {
			if v != "" {
				l.Annotations[k] = v
			}
		}
		rec := kube.RecordOf(l)
		want := store.Record{Instance: instance, HandoffTo: handoff, TransferTo: transfer, Transitions: int64(transitions), Version: "7"}
		if hasHolder {
			want.Holder = holder
		}
		if hasSecs {
			want.LeaseDuration = time.Duration(secs) * time.Second
		}
		if rec.Holder != want.Holder || rec.LeaseDuration != want.LeaseDuration || rec.Transitions != want.Transitions ||
			rec.Instance != want.Instance || rec.HandoffTo != want.HandoffTo || rec.TransferTo != want.TransferTo || rec.Version != "7" {
			t.Fatalf("RecordOf = %+v, want %+v", rec, want)
		}
		if hasTimes && !rec.RenewTime.Equal(l.Spec.RenewTime.Time) {
			t.Fatalf("renew time %v, want %v", rec.RenewTime, l.Spec.RenewTime.Time)
		}
		b, err := strconv.ParseBool(release)
		if wantRelease := release != "" && (err != nil || b); rec.ReleaseRequested != wantRelease {
			t.Fatalf("release-requested %q decoded as %v", release, rec.ReleaseRequested)
		}
		checkValidate(t, rec)
	})
}

// FuzzRecordOfJSON decodes arbitrary bytes as a Lease, as the API server's
// answers are decoded, then as a record.
func FuzzRecordOfJSON(f *testing.F) {
	f.Add([]byte(`{"metadata":{"name":"db","resourceVersion":"12","annotations":{"incumbent.io/instance":"ab"}},"spec":{"holderIdentity":"a","leaseDurationSeconds":15,"acquireTime":"2026-01-02T03:04:05.000000Z","renewTime":"2026-01-02T03:04:06.000000Z","leaseTransitions":4}}`))
	f.Add([]byte(`{"spec":{"holderIdentity":"","leaseDurationSeconds":-1,"leaseTransitions":-3}}`))
	f.Add([]byte(`{"metadata":{"annotations":{"incumbent.io/release-requested":"no","incumbent.io/transfer-to":"b"}},"spec":{"holderIdentity":"a"}}`))
	f.Add([]byte(`{"spec":{"renewTime":"0001-01-01T00:00:00Z","preferredHolder":"x","strategy":"OldestEmulationVersion"}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var l coordinationv1.Lease
		if err := json.Unmarshal(data, &l); err != nil {
			return
		}
		rec := kube.RecordOf(&l)
		if l.Spec.HolderIdentity != nil && rec.Holder != *l.Spec.HolderIdentity {
			t.Fatalf("holder %q, want %q", rec.Holder, *l.Spec.HolderIdentity)
		}
		checkValidate(t, rec)
	})
}

// checkValidate: Validate never panics, and reports exactly the impossible
// records, as ErrMalformed.
func checkValidate(t *testing.T, rec store.Record) {
	t.Helper()
	err := rec.Validate()
	bad := rec.LeaseDuration < 0 || rec.Transitions < 0 || (rec.Holder != "" && rec.LeaseDuration <= 0)
	if bad != (err != nil) {
		t.Fatalf("Validate(%+v) = %v", rec, err)
	}
	if err != nil && !errors.Is(err, store.ErrMalformed) {
		t.Fatalf("Validate error %v does not wrap ErrMalformed", err)
	}
}
