package testenv_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/incumbent-io/incumbent/internal/testenv"
)

func TestStartClusterRejectsAnEmptyFolder(t *testing.T) {
	c, err := testenv.StartCluster("")
	if err == nil {
		c.Stop()
		t.Fatal("StartCluster(\"\") succeeded, want an error")
	}
	if !strings.Contains(err.Error(), "folder") {
		t.Errorf("error %q does not say what is wrong", err)
	}
}

// TestClusterRestartsInPlace restarts the API server, then etcd, and checks
// after each restart that a Lease written before is still there unchanged,
// that the same client reconnects and can write again, and that the client
// configuration verifies the server's certificate.
func TestClusterRestartsInPlace(t *testing.T) {
	began := time.Now()
	c, err := testenv.StartCluster(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	t.Logf("cluster ready in %v, API server at %s", time.Since(began).Round(time.Millisecond), c.APIServerAddr())

	cfg := c.Config()
	if cfg.Insecure || len(cfg.CAData) == 0 {
		t.Fatalf("Config does not verify the server: insecure=%v, %d bytes of CA data", cfg.Insecure, len(cfg.CAData))
	}
	if !strings.HasSuffix(cfg.Host, c.APIServerAddr()) {
		t.Errorf("Config().Host = %q, want the API server address %s", cfg.Host, c.APIServerAddr())
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	leases := cs.CoordinationV1().Leases("default")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	holder := "before-restarts"
	created, err := leases.Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "survivor"},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	last := created
	// A watch stays open across the restarts, as every candidate's does: it
	// must not hold a restart up, and it must end when its server goes.
	w, err := leases.Watch(ctx, metav1.ListOptions{ResourceVersion: created.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for _, step := range []struct {
		name    string
		restart func() error
	}{{"API server", c.RestartAPIServer}, {"etcd", c.RestartEtcd}} {
		began := time.Now()
		if err := step.restart(); err != nil {
			t.Fatalf("restart %s: %v", step.name, err)
		}
		t.Logf("%s restarted in %v", step.name, time.Since(began).Round(time.Millisecond))
		if step.name == "API server" {
			if err := drained(w, 30*time.Second); err != nil {
				t.Fatalf("the watch opened before the API server restart: %v", err)
			}
		}

		// The same client reconnects: a read succeeds within a bounded
		// number of attempts and finds the Lease exactly as it was.
		var got *coordinationv1.Lease
		attempts := 0
		deadline := time.Now().Add(30 * time.Second)
		retry := time.NewTicker(100 * time.Millisecond) // interval between attempts of a bounded wait
		for {
			attempts++
			got, err = leases.Get(ctx, "survivor", metav1.GetOptions{})
			if err == nil || time.Now().After(deadline) {
				break
			}
			<-retry.C
		}
		retry.Stop()
		if err != nil {
			t.Fatalf("after the %s restart, the client did not reconnect within 30s (%d attempts): %v", step.name, attempts, err)
		}
		t.Logf("after the %s restart the client read the Lease at attempt %d", step.name, attempts)
		if got.ResourceVersion != last.ResourceVersion || *got.Spec.HolderIdentity != *last.Spec.HolderIdentity {
			t.Fatalf("after the %s restart the Lease is holder %q version %s, want holder %q version %s",
				step.name, *got.Spec.HolderIdentity, got.ResourceVersion, *last.Spec.HolderIdentity, last.ResourceVersion)
		}

		// A new watch, from the collection's current version (the server's
		// watch cache starts afresh after a restart, so older versions are
		// expired), sees the next write.
		list, err := leases.List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("after the %s restart, list: %v", step.name, err)
		}
		w2, err := leases.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
		if err != nil {
			t.Fatalf("after the %s restart, watch: %v", step.name, err)
		}
		next := "after-" + strings.ReplaceAll(step.name, " ", "-")
		got.Spec.HolderIdentity = &next
		updated, err := leases.Update(ctx, got, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("after the %s restart, update the Lease: %v", step.name, err)
		}
		if updated.ResourceVersion == got.ResourceVersion {
			t.Fatalf("after the %s restart, the update did not change the resourceVersion %s", step.name, got.ResourceVersion)
		}
		select {
		case ev, ok := <-w2.ResultChan():
			l, isLease := ev.Object.(*coordinationv1.Lease)
			if !ok || ev.Type != watch.Modified || !isLease || l.ResourceVersion != updated.ResourceVersion {
				t.Fatalf("after the %s restart, the watch delivered %v %+v (open %v), want the update to version %s", step.name, ev.Type, ev.Object, ok, updated.ResourceVersion)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("after the %s restart, the watch did not deliver the update within 30s", step.name)
		}
		w2.Stop()
		last = updated
	}

	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := c.RestartAPIServer(); err == nil {
		t.Error("RestartAPIServer after Stop succeeded, want an error")
	}
}

// drained reads w until its server ends it, up to bound.
func drained(w watch.Interface, bound time.Duration) error {
	deadline := time.After(bound)
	for {
		select {
		case _, ok := <-w.ResultChan():
			if !ok {
				return nil
			}
		case <-deadline:
			return fmt.Errorf("still open %v after its server restarted", bound)
		}
	}
}
