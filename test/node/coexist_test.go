//go:build node

package node

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// TestControlPlaneElection is the seed's motivating example: two
// kube-scheduler replicas elect a leader with client-go's leaderelection on
// the same cluster, and incumbent, as an observer, shows their holder
// correctly, before and after the leader is killed.
func TestControlPlaneElection(t *testing.T) {
	holder := watchHolder(t, "kube-system", "kube-scheduler")
	first := holder.await(t, time.Time{}, 60*time.Second, "a scheduler leader", func(v string) bool { return v != "" }).value
	if _, err := node.StartScheduler(context.Background(), "kube-scheduler-2"); err != nil {
		t.Fatal(err)
	}
	status := func() map[string]any {
		out := incumbent(t, nil, "status", "--lease", "kube-scheduler", "-n", "kube-system", "-o", "json")
		var v map[string]any
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("incumbent status -o json: %v\n%s", err, out)
		}
		return v
	}
	check := func(want string) {
		t.Helper()
		v := status()
		if v["holder"] != want {
			t.Fatalf("incumbent status shows holder %v, the Lease is held by %s: %v", v["holder"], want, v)
		}
		// The listing: its row for the Lease names the holder, as client-go's.
		table := string(incumbent(t, nil, "status", "-n", "kube-system"))
		found := false
		for _, line := range strings.Split(table, "\n") {
			f := strings.Fields(line)
			if len(f) > 2 && f[0] == "kube-scheduler" {
				found = true
				if f[1] != want || f[2] != "client-go" {
					t.Errorf("incumbent status -n kube-system: %q, want holder %s of kind client-go", line, want)
				}
			}
		}
		if !found {
			t.Errorf("incumbent status -n kube-system does not list kube-scheduler:\n%s", table)
		}
	}
	check(first)
	// The first scheduler has led since the node started: kill it.
	b, err := os.ReadFile(node.Logs("kube-scheduler"))
	if err != nil || !strings.Contains(string(b), `"Successfully acquired lease" lock="kube-system/kube-scheduler"`) {
		t.Fatalf("the node's first scheduler does not say it leads (%v)", err)
	}
	t0 := time.Now()
	if err := node.KillScheduler("kube-scheduler"); err != nil {
		t.Fatal(err)
	}
	second := holder.await(t, t0, 60*time.Second, "the second scheduler to lead", func(v string) bool { return v != "" && v != first })
	check(second.value)
	results.add("kube-scheduler (client-go): leader SIGKILLed → the other leads", second.at.Sub(t0))
	results.note("kube-scheduler: holder %s, then %s %v after the SIGKILL; incumbent status showed both (kind client-go)", first, second.value, second.at.Sub(t0).Round(time.Millisecond))
}
