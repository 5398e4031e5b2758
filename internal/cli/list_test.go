package cli

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/kube"
)

// fields splits a table into rows of cells (cells hold no blanks).
func fields(table string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSpace(table), "\n") {
		rows = append(rows, strings.Fields(line))
	}
	return rows
}

func TestLeaseTable(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	held := func(ns, name, holder string, term int64, kind kube.HolderKind, renewedAgo time.Duration) leaseEntry {
		rec := store.Record{Holder: holder, Term: term, Transitions: 3, LeaseDuration: 15 * time.Second,
			RenewTime: now.Add(-renewedAgo), AcquireTime: now.Add(-time.Hour)}
		return leaseEntry{leaseStatus: describe(name, ns, rec, now), HolderKind: kind}
	}
	a := held("prod", "db", "db-0", 73512, kube.HolderIncumbent, 2*time.Second)
	a.Pod = &podInfo{Name: "db-0", Phase: "Running", IP: "10.0.0.7", Node: "n1"}
	b := held("prod", "ctrl", "ctrl-7d9c_0f1e", 0, kube.HolderClientGo, 20*time.Second)
	c := leaseEntry{leaseStatus: describe("free", "prod", store.Record{LeaseDuration: time.Second, HandoffTo: "db-1",
		RenewTime: now.Add(-time.Minute)}, now)}
	d := held("other", "web", "web-1", 9, kube.HolderIncumbent, time.Second)
	doc := leaseList{Items: []leaseEntry{a, b, c, d}}

	var out bytes.Buffer
	if err := writeLeaseTable(&out, doc, tableOptions{unknownPods: map[string]bool{"other": true}}, now); err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"NAME", "HOLDER", "KIND", "TERM", "RENEWED", "EXPIRES-IN", "POD", "NODE"},
		{"db", "db-0", "incumbent", "73512", "2s", "ago", "13s", "db-0", "n1"},
		{"ctrl", "ctrl-7d9c_0f1e", "client-go", "-", "20s", "ago", "expired", "5s", "ago", "-", "-"},
		{"free", "<none>", "-", "-", "60s", "ago", "-", "-", "-"},
		{"web", "web-1", "incumbent", "9", "1s", "ago", "14s", "<unknown>", "<unknown>"},
	}
	if got := fields(out.String()); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("table:\n%s\nwant rows %q", out.String(), want)
	}

	out.Reset()
	if err := writeLeaseTable(&out, doc, tableOptions{namespaces: true, wide: true}, now); err != nil {
		t.Fatal(err)
	}
	rows := fields(out.String())
	wantHead := []string{"NAMESPACE", "NAME", "HOLDER", "KIND", "TERM", "RENEWED", "EXPIRES-IN", "POD", "NODE",
		"PHASE", "IP", "TRANSITIONS", "DURATION", "NOTE"}
	if !slices.Equal(rows[0], wantHead) {
		t.Errorf("wide header %q, want %q", rows[0], wantHead)
	}
	for i, want := range [][]string{
		{"prod", "db", "db-0", "incumbent", "73512", "2s", "ago", "13s", "db-0", "n1", "Running", "10.0.0.7", "3", "15s", "-"},
		{"prod", "free", "<none>", "-", "-", "60s", "ago", "-", "-", "-", "-", "-", "0", "1s", "reserved", "for", "db-1"},
	} {
		row := rows[[]int{1, 3}[i]]
		if !slices.Equal(row, want) {
			t.Errorf("wide row %q, want %q\n%s", row, want, out.String())
		}
	}
}

func TestPodNamesOfAHolder(t *testing.T) {
	for holder, want := range map[string][]string{
		"db-0":                  {"db-0"},
		"ctrl-7d9c-x2_0f1e2d3c": {"ctrl-7d9c-x2_0f1e2d3c", "ctrl-7d9c-x2"},
		"_odd":                  {"_odd"},
	} {
		if got := podNames(holder); !slices.Equal(got, want) {
			t.Errorf("podNames(%q) = %q, want %q", holder, got, want)
		}
	}
	idx := holderPodsIndex{byNamespace: map[string]map[string]*podInfo{"prod": {"ctrl-7d9c-x2": {Name: "ctrl-7d9c-x2"}}}}
	if p := idx.find("prod", "ctrl-7d9c-x2_0f1e2d3c"); p == nil || p.Name != "ctrl-7d9c-x2" {
		t.Errorf("a hostname_UUID holder's pod: %+v", p)
	}
	if p := idx.find("other", "ctrl-7d9c-x2_0f1e2d3c"); p != nil {
		t.Errorf("a pod of another namespace was taken for the holder's: %+v", p)
	}
}

func TestAgo(t *testing.T) {
	for d, want := range map[time.Duration]string{5 * time.Second: "5s ago", -3 * time.Second: "in 3s", 90 * time.Minute: "90m ago"} {
		if got := ago(d); got != want {
			t.Errorf("ago(%v) = %q, want %q", d, got, want)
		}
	}
}

// Bad status invocations are usage errors that say what is wrong, before
// any connection.
func TestStatusUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"status", "-o", "xml"}, `invalid --output "xml": want table, wide, json or yaml`},
		{[]string{"status", "--lease", "db", "-A"}, "--all-namespaces lists every Lease: leave out --lease db, or -A"},
		{[]string{"status", "--backend", "file"}, "--lease is required with --backend file: listing every lease works only with --backend kubernetes"},
	} {
		e, out, errb := fakeEnv(t, nil, c.args...)
		if code := Main(context.Background(), *e); code != ExitUsage || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%q: exit %d, stderr %q, stdout %q; want exit %d and %q", c.args, code, errb, out, ExitUsage, c.want)
		}
	}
}
