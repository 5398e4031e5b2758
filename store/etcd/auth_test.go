package etcd_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/etcd"
)

// With etcd authentication on, each refusal wraps store.ErrPermission and
// names the operation and the key; what a user may do still works.
func TestPermissionsWithEtcdAuth(t *testing.T) {
	ctx := testContext(t)
	srv := startServer(t, nil)
	const prefix, name = "/incumbent/leases", "db"
	key := prefix + "/" + name

	admin := newClient(t, etcd.Config{Endpoints: []string{srv.Endpoint()}})
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(admin.UserAdd(ctx, "root", "root-pw"))
	must(admin.UserGrantRole(ctx, "root", "root"))
	must(admin.RoleAdd(ctx, "lease-rw"))
	must(admin.RoleGrantPermission(ctx, "lease-rw", key, "", clientv3.PermissionType(clientv3.PermReadWrite)))
	must(admin.RoleAdd(ctx, "lease-ro"))
	must(admin.RoleGrantPermission(ctx, "lease-ro", key, "", clientv3.PermissionType(clientv3.PermRead)))
	for user, role := range map[string]string{"alice": "lease-rw", "reader": "lease-ro", "nobody": ""} {
		must(admin.UserAdd(ctx, user, user+"-pw"))
		if role != "" {
			must(admin.UserGrantRole(ctx, user, role))
		}
	}
	must(admin.AuthEnable(ctx))

	storeAs := func(user, password string) *etcd.Store {
		t.Helper()
		c := newClient(t, etcd.Config{Endpoints: []string{srv.Endpoint()}, Username: user, Password: password})
		s, err := etcd.New(c, prefix, name)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	refused := func(who, op string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrPermission) || !strings.HasPrefix(err.Error(), op+" etcd key "+key) {
			t.Fatalf("%s: %s: %v; want ErrPermission naming %q and the key", who, op, err, op)
		}
		t.Logf("%s: %v", who, err)
	}

	alice := storeAs("alice", "alice-pw")
	rec, err := alice.Create(ctx, held("alice", 0))
	if err != nil {
		t.Fatalf("alice (readwrite) create: %v", err)
	}
	rec.Transitions = 1
	if rec, err = alice.Update(ctx, rec); err != nil {
		t.Fatalf("alice (readwrite) update: %v", err)
	}
	if _, err := alice.Get(ctx); err != nil {
		t.Fatalf("alice (readwrite) get: %v", err)
	}

	reader := storeAs("reader", "reader-pw")
	if _, err := reader.Get(ctx); err != nil {
		t.Fatalf("reader (read) get: %v", err)
	}
	wctx, stop := context.WithCancel(ctx)
	events, err := reader.Watch(wctx, rec.Version)
	if err != nil {
		t.Fatalf("reader (read) watch: %v", err)
	}
	stop()
	closed(t, events)
	_, err = reader.Update(ctx, rec)
	refused("reader (read)", "update", err)
	if _, err := admin.Get(ctx, key); err == nil { // no credentials at all
		t.Fatal("a client without credentials could read")
	}

	nobody := storeAs("nobody", "nobody-pw")
	_, err = nobody.Get(ctx)
	refused("nobody", "get", err)
	_, err = nobody.Watch(ctx, "")
	refused("nobody", "watch", err)
	_, err = nobody.Create(ctx, held("nobody", 0))
	refused("nobody", "create", err)
	anonymous, err := etcd.New(admin, prefix, name)
	if err != nil {
		t.Fatal(err)
	}
	_, err = anonymous.Get(ctx)
	refused("no credentials", "get", err)

	_, err = etcd.NewClient(etcd.Config{Endpoints: []string{srv.Endpoint()}, Username: "alice", Password: "wrong"})
	if !errors.Is(err, store.ErrPermission) || !strings.Contains(err.Error(), `"alice"`) {
		t.Fatalf("wrong password: %v; want ErrPermission naming the user", err)
	}
	t.Logf("wrong password: %v", err)

	// An elector that may read but not write stops with the permission
	// error instead of retrying forever.
	if _, err := alice.Update(ctx, store.Record{LeaseDuration: time.Second, Transitions: 1, Version: rec.Version}); err != nil {
		t.Fatal(err) // released: the reader's elector will try to take it
	}
	e, err := election.New(election.Config{Store: storeAs("reader", "reader-pw"), Identity: "reader",
		LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 250 * time.Millisecond, Grace: 500 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Run(ctx); !errors.Is(err, store.ErrPermission) {
		t.Fatalf("elector without write permission: Run = %v, want ErrPermission", err)
	}
}
