// Package chaos holds the fault-injection harness of incumbent: its tests
// run several real `incumbent run -- child` processes against a real
// kube-apiserver and etcd that can be restarted in place, inject faults in
// random order with random timing (leader SIGKILL, leader SIGSTOP longer
// than the lease, the leader's connection cut, API server latency, API
// server restart, etcd restart), and let an independent checker
// (./checker), which also plays the fenced resource, judge every term.
//
// The short profile runs with the default `go test ./...`; a long one for
// releases with, for example:
//
//	go test -race -timeout 45m ./test/chaos/ -run TestChaos -chaos.duration=30m -chaos.report
//
// -chaos.report writes the report to test/chaos/results/latest.md;
// -chaos.seed replays a fault order; -chaos.candidates sets how many
// sidecars campaign (3 to 5); -chaos.faults=stop,etcd injects only some
// kinds; -chaos.keep keeps the sidecars' logs, -chaos.log-level sets theirs.
package chaos
