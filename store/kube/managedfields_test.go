package kube_test

import (
	"context"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/incumbent-io/incumbent/store/kube"
)

// The store keeps Leases without their managedFields, to save memory, and
// so updates them without: the API server must keep its record of who
// manages which field (another manager's entry survives), not reset it.
func TestUpdateKeepsTheServersFieldManagers(t *testing.T) {
	ctx := context.Background()
	cfg := rest.CopyConfig(env.Config)
	cfg.UserAgent = "other-manager"
	other, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	leases := other.CoordinationV1().Leases(namespace)
	holder, secs := "someone", int32(15)
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "managed-fields", Namespace: namespace, Labels: map[string]string{"team": "a"}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs}}
	if _, err := leases.Create(ctx, l, metav1.CreateOptions{FieldManager: "other-manager"}); err != nil {
		t.Fatal(err)
	}
	st, err := kube.New(env.Config, namespace, "managed-fields", kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := st.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rec.Holder, rec.RenewTime = "me", time.Now()
	if _, err := st.Update(ctx, rec); err != nil {
		t.Fatal(err)
	}
	got, err := leases.Get(ctx, "managed-fields", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	managers := map[string]bool{}
	for _, m := range got.ManagedFields {
		managers[m.Manager] = true
	}
	if !managers["other-manager"] || len(managers) < 2 {
		t.Fatalf("field managers after the store's update: %v; want other-manager's entry kept beside the store's", managers)
	}
	if got.Labels["team"] != "a" {
		t.Fatalf("labels after the store's update: %v; want them kept", got.Labels)
	}
}
