package inject

import (
	"strconv"
	"strings"
)

// rolloutDeadlock says why a Deployment's strategy would deadlock a
// rollout when only one pod is ever Ready (the leader-port mode), or ""
// when it would not: measured on a real kubelet (test/node,
// TestLeaderPort), a RollingUpdate goes through only when maxUnavailable
// is at least the replica count (100%), and Recreate always does. Other
// kinds, and values inject cannot read (a template expression), get "".
func rolloutDeadlock(w *workload) string {
	if w.kind() != "Deployment" {
		return ""
	}
	spec := get(w.node, "spec")
	strategy := get(spec, "strategy")
	if scalar(get(strategy, "type")) == "Recreate" {
		return ""
	}
	replicas := 1
	if r := get(spec, "replicas"); r != nil {
		n, err := strconv.Atoi(scalar(r))
		if err != nil {
			return ""
		}
		replicas = n
	}
	if replicas <= 1 {
		return ""
	}
	mu := scalar(get(get(strategy, "rollingUpdate"), "maxUnavailable"))
	switch {
	case mu == "":
		return "its strategy is the default RollingUpdate (maxUnavailable: 25%)"
	case strings.HasSuffix(mu, "%"):
		if p, err := strconv.Atoi(strings.TrimSuffix(mu, "%")); err == nil && p < 100 {
			return "its RollingUpdate has maxUnavailable: " + mu
		}
	default:
		if n, err := strconv.Atoi(mu); err == nil && n < replicas {
			return "its RollingUpdate has maxUnavailable: " + mu + " with " + strconv.Itoa(replicas) + " replicas"
		}
	}
	return ""
}
