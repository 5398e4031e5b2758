package kube_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/kube"
)

// A candidate whose credentials the API server rejects (401: a pod's bound
// token once its pod object is deleted) stops with store.ErrCredentials: so
// it does with a Store of its own (kube.New). With a Store of a Client whose
// namespace watch is shared, it must too.
func TestRejectedCredentialsEndRunWithASharedWatch(t *testing.T) {
	cfg := rest.CopyConfig(env.Config)
	cfg.BearerToken, cfg.BearerTokenFile = "not-a-valid-token", ""
	cfg.CertData, cfg.KeyData, cfg.CertFile, cfg.KeyFile = nil, nil, "", ""
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) store.Store
	}{
		{"own store", func(t *testing.T) store.Store {
			s, err := kube.New(cfg, namespace, "shared-401", kube.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
		{"shared watch", func(t *testing.T) store.Store {
			c, err := kube.NewClient(cfg, kube.ClientOptions{Watch: kube.WatchNamespace})
			if err != nil {
				t.Fatal(err)
			}
			s, err := c.Store(namespace, "shared-401")
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs syncBuffer
			e, err := election.New(election.Config{Store: tc.store(t), Identity: "a",
				Logger:        slog.New(slog.NewTextHandler(&logs, nil)),
				LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 500 * time.Millisecond, Grace: 500 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			err = e.Run(ctx)
			if !errors.Is(err, store.ErrCredentials) {
				t.Fatalf("Run with rejected credentials returned %v after %v (ctx: %v); want store.ErrCredentials. Status %+v, Check %v, logs:\n%s",
					err, 15*time.Second, ctx.Err(), e.Status(), e.Check(), logs.String())
			}
		})
	}
}

// A candidate that cannot reach the API server says so in its log: with a
// Store of its own, the tracker warns each retry period ("cannot read the
// lease record; retrying"). With a shared watch, the hub's list fails and is
// retried forever without a word, and nothing else reads.
func TestUnreachableServerIsLoggedWithASharedWatch(t *testing.T) {
	cfg := rest.CopyConfig(env.Config)
	cfg.Host = "https://127.0.0.1:1" // nothing listens there
	for _, mode := range []struct {
		name string
		mode kube.WatchMode
	}{{"each", kube.WatchEach}, {"namespace", kube.WatchNamespace}} {
		t.Run(mode.name, func(t *testing.T) {
			c, err := kube.NewClient(cfg, kube.ClientOptions{Watch: mode.mode})
			if err != nil {
				t.Fatal(err)
			}
			st, err := c.Store(namespace, "shared-unreachable")
			if err != nil {
				t.Fatal(err)
			}
			var logs syncBuffer
			e, err := election.New(election.Config{Store: st, Identity: "a",
				Logger:        slog.New(slog.NewTextHandler(&logs, nil)),
				LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 500 * time.Millisecond, Grace: 500 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := e.Run(ctx); err != nil {
				t.Fatal(err)
			}
			if logs.String() == "" {
				t.Fatalf("5s against an unreachable API server and not a line of log; status %+v", e.Status())
			}
		})
	}
}

// store.Store.Watch "never hides a deletion": a Watch from a version after
// which the Lease was deleted and created again reports the deletion first.
// The watch of a single Lease does (the API server replays from the
// version); the shared watch tells the deletion only when the Store itself
// remembers the UID at that version, so a Store that did not read that
// version (another Store of the Client, a fresh one, or one whose two
// remembered Leases moved on) is told only the new Lease.
func TestSharedWatchFromAVersionTellsADeletion(t *testing.T) {
	admin, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []struct {
		name string
		mode kube.WatchMode
	}{{"each", kube.WatchEach}, {"namespace", kube.WatchNamespace}} {
		t.Run(mode.name, func(t *testing.T) {
			name := "shared-hidden-deletion-" + mode.name
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			w, err := kube.New(env.Config, namespace, name, kube.Options{})
			if err != nil {
				t.Fatal(err)
			}
			first, err := w.Create(ctx, store.Record{Holder: "a", LeaseDuration: 15 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if err := admin.CoordinationV1().Leases(namespace).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			again, err := w.Create(ctx, store.Record{Holder: "b", LeaseDuration: 15 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			c, err := kube.NewClient(env.Config, kube.ClientOptions{Watch: mode.mode})
			if err != nil {
				t.Fatal(err)
			}
			r, err := c.Store(namespace, name)
			if err != nil {
				t.Fatal(err)
			}
			ch, err := r.Watch(ctx, first.Version)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for len(got) == 0 || got[len(got)-1] != again.Version {
				select {
				case ev, ok := <-ch:
					if !ok {
						t.Fatalf("watch ended; got %v", got)
					}
					if ev.Deleted {
						got = append(got, "deleted")
					} else {
						got = append(got, ev.Record.Version)
					}
				case <-ctx.Done():
					t.Fatalf("got %v, never the re-created version %s", got, again.Version)
				}
			}
			if got[0] != "deleted" {
				t.Fatalf("a Watch from version %s (deleted, then re-created as %s) reported %v: the deletion is hidden", first.Version, again.Version, got)
			}
		})
	}
}
