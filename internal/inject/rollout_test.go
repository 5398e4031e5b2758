package inject

import (
	"fmt"
	"strings"
	"testing"
)

// A leader-port Deployment whose strategy deadlocks rollouts (measured on a
// real kubelet: anything but maxUnavailable 100% or Recreate) is injected,
// with a warning that says why and what to set; one that works, and the
// other modes, get none.
func TestLeaderPortRolloutWarning(t *testing.T) {
	for _, tc := range []struct {
		name, mode, strategy string
		replicas             string
		warn                 string // a substring of the warning, "" for none
	}{
		{"default strategy", "leader-port", "", "3", "default RollingUpdate"},
		{"maxUnavailable 1", "leader-port", "strategy: {rollingUpdate: {maxSurge: 0, maxUnavailable: 1}}", "2", "maxUnavailable: 1 with 2 replicas"},
		{"maxUnavailable 50%", "leader-port", "strategy: {rollingUpdate: {maxUnavailable: 50%}}", "3", "maxUnavailable: 50%"},
		{"maxUnavailable 100%", "leader-port", "strategy: {rollingUpdate: {maxSurge: 0, maxUnavailable: 100%}}", "3", ""},
		{"maxUnavailable = replicas", "leader-port", "strategy: {rollingUpdate: {maxUnavailable: 3}}", "3", ""},
		{"Recreate", "leader-port", "strategy: {type: Recreate}", "3", ""},
		{"one replica", "leader-port", "", "1", ""},
		{"labels mode", "labels", "", "3", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: prod}
spec:
  replicas: %s
  %s
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: app:1, ports: [{name: http, containerPort: 8080}]}]
`, tc.replicas, tc.strategy)
			var warnings []string
			_, err := Inject(Options{Lease: "web", Mode: Mode(tc.mode), Warn: func(s string) { warnings = append(warnings, s) }},
				Input{Name: "app.yaml", Data: []byte(in)})
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.warn == "" && len(warnings) > 0:
				t.Errorf("warnings %q, want none", warnings)
			case tc.warn != "" && (len(warnings) != 1 || !strings.Contains(warnings[0], tc.warn) || !strings.Contains(warnings[0], "app.yaml:")):
				t.Errorf("warnings %q, want one naming app.yaml and %q", warnings, tc.warn)
			}
		})
	}
}
