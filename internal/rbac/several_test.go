package rbac

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/incumbent-io/incumbent/internal/kubeclient"
	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/kube"
)

func TestRulesOfSeveralLeases(t *testing.T) {
	o := Options{Lease: "a", Leases: []string{"a", "b", "c"}, Namespace: "prod", ServiceAccount: "sa"}
	rules := Rules(o)
	find := func(verbs []string, names []string) *Rule {
		for i, r := range rules {
			if r.Resource == "leases" && slices.Equal(r.Verbs, verbs) && slices.Equal(r.ResourceNames, names) {
				return &rules[i]
			}
		}
		return nil
	}
	if r := find([]string{"get", "update"}, o.Leases); r == nil || r.Optional {
		t.Errorf("no required get/update on every lease: %+v", rules)
	}
	if r := find([]string{"list", "watch"}, nil); r == nil || !r.Optional || !strings.Contains(r.Without, "one watcher per lease") {
		t.Errorf("no optional list/watch on the namespace's Leases saying what happens without it: %+v", rules)
	}
	if r := find([]string{"list", "watch"}, o.Leases); r == nil || !r.Optional {
		t.Errorf("no optional list and watch of each lease by name: %+v", rules)
	}
	if r := find([]string{"create"}, nil); r == nil {
		t.Errorf("no create: %+v", rules)
	}
	doc, err := YAML(o)
	if err != nil {
		t.Fatal(err)
	}
	flat := strings.Join(strings.Fields(strings.ReplaceAll(doc, "#", "")), " ")
	for _, want := range []string{"falls back to one watch per lease", `resourceNames: ["a", "b", "c"]`, `name: "incumbent-a"`} {
		if !strings.Contains(flat, want) {
			t.Errorf("the Role lacks %q:\n%s", want, doc)
		}
	}
	if got := Command(o); got != "incumbent rbac --lease a,b,c -n prod --service-account <name>" {
		t.Errorf("Command = %q", got)
	}
	for _, bad := range []Options{
		{Lease: "b", Leases: []string{"a", "b"}, Namespace: "x"},
		{Leases: []string{"a", "a"}, Namespace: "x"},
		{Leases: []string{"a", "Bad_Name"}, Namespace: "x"},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("Validate(%+v) passed", bad)
		}
	}
}

// lockedBuffer is a log destination the Client writes from its goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// watchTwo makes a Client as the service account, creates two of its
// Leases, and checks that each Store's watch reports an update of its Lease.
// It returns what the Client logged.
func watchTwo(t *testing.T, cfg *rest.Config, ns string, names []string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var logs lockedBuffer
	client, err := kube.NewClient(cfg, kube.ClientOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		st, err := client.Store(ns, name)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := st.Get(ctx)
		switch {
		case errors.Is(err, store.ErrNotFound):
			rec, err = st.Create(ctx, store.Record{Holder: "a", LeaseDuration: 15 * time.Second})
		case err == nil:
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		before := rec.Version
		events, err := st.Watch(ctx, before)
		if err != nil {
			t.Fatalf("watch %s: %v", name, err)
		}
		rec.RenewTime = time.Now()
		if rec, err = st.Update(ctx, rec); err != nil {
			t.Fatalf("update %s: %v", name, err)
		}
		for got := false; !got; {
			select {
			case ev, open := <-events:
				switch {
				case !open:
					// The watch broke (a refused shared watch ends so): watch
					// again, as the elector does.
					if events, err = st.Watch(ctx, before); err != nil {
						t.Fatalf("watch %s again: %v", name, err)
					}
				case ev.Err != nil:
					t.Fatalf("watch %s: %v", name, ev.Err)
				default:
					got = ev.Record.Version == rec.Version
				}
			case <-ctx.Done():
				t.Fatalf("watch %s: no event of the update", name)
			}
		}
	}
	return logs.String()
}

// The Role of several leases, applied for real, grants what the sidecar
// needs: every lease's verbs and the shared watch of the namespace's
// Leases. Without its optional list/watch rule the Stores say so once and
// watch each Lease on its own.
func TestSeveralLeasesRoleIsEnough(t *testing.T) {
	o := Options{Leases: []string{"sa", "sb", "sc", "sd-absent"}, Namespace: "rbac-several", ServiceAccount: "several"}
	cfg, admin := saConfig(t, o)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	kc, err := kubeclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if optional, err := Check(ctx, kc.SelfSubjectAccessReviews(), o); err != nil || len(optional) > 0 {
		t.Fatalf("Check with the generated Role: %v (optional missing: %v)", err, optional)
	}
	if logs := watchTwo(t, cfg, o.Namespace, []string{"sa", "sb"}); strings.Contains(logs, "cannot watch all the Leases") {
		t.Errorf("the shared watch was refused under the generated Role:\n%s", logs)
	}

	roles := admin.RbacV1().Roles(o.Namespace)
	role, err := roles.Get(ctx, "incumbent-sa", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	role.Rules = slices.DeleteFunc(role.Rules, func(r rbacv1.PolicyRule) bool {
		return slices.Contains(r.Verbs, "list") && len(r.ResourceNames) == 0
	})
	if _, err := roles.Update(ctx, role, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	var optional []string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && len(optional) == 0; {
		optional, err = Check(ctx, kc.SelfSubjectAccessReviews(), o)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // poll interval of a bounded wait
	}
	if len(optional) != 2 || !strings.Contains(optional[0], `verb "list" on resource "leases"`) || !strings.Contains(optional[0], "one watcher per lease") {
		t.Errorf("Check without list/watch: optional %q; want list and watch named, saying what the sidecar does without them", optional)
	}
	logs := watchTwo(t, cfg, o.Namespace, []string{"sb", "sc"})
	if n := strings.Count(logs, "cannot watch all the Leases"); n != 1 {
		t.Errorf("without list/watch, the Client logged the fall-back %d times, want once:\n%s", n, logs)
	}

	// A Lease that does not exist yet is watched from "now": the Store
	// looks it up by a list of its name first, which the named rule allows
	// (without it the watch was refused, and the elector polled that Lease
	// for minutes).
	client, err := kube.NewClient(cfg, kube.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	absent, err := client.Store(o.Namespace, "sd-absent")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Store(o.Namespace, "sa"); err != nil {
		t.Fatal(err)
	}
	if _, err := absent.Watch(ctx, ""); err != nil {
		t.Errorf("watch of a Lease not created yet, without list/watch on every Lease: %v", err)
	}
}
