// Package inject adds the incumbent sidecar to Kubernetes manifests (the
// `incumbent inject` command), and prints a MutatingAdmissionPolicy that has
// the API server add the same sidecar to Pods (`incumbent inject --policy`).
// The shape of what it adds is defined once, in sidecar.go: manifests, the
// policy and the examples in deploy/examples all come from it.
//
// Inject edits the parsed YAML (yaml.v3 nodes) in place: every object it
// does not change is written back with its comments, its field order and
// its styles; what it adds carries comments that say why. Each change is an
// "ensure": what is missing is added, what is present and equal is kept,
// what is present and different is refused with the place and the reason.
// So injecting twice changes nothing.
//
// What it adds, per mode:
//
//   - status, labels, leader-port: a native sidecar (last of the init
//     containers, restartPolicy: Always) with the downward-API environment,
//     the status port, startup and liveness probes on /healthz (which answers
//     from the first moment), a preStop hook `/incumbent withdraw`,
//     resources, a restricted securityContext, and its own API credentials
//     (a projected token volume, as Kubernetes mounts it by default, so that
//     automountServiceAccountToken: false can keep the application without a
//     token). leader-port adds the leader port as the sidecar's
//     readinessProbe: a native sidecar's readiness counts toward the pod's,
//     so only the leader is Ready. labels adds --label-pod, a Service
//     <lease>-leader and a PodDisruptionBudget.
//   - exec: an init container copies the binary out of the incumbent image
//     into an emptyDir, and the chosen container's command becomes
//     `/incumbent-bin/incumbent run ... -- COMMAND`; its args follow as they
//     were. A container without a command in its manifest is refused (the
//     image's entrypoint is not known here), and so is one with a liveness
//     or startup probe of its own (followers, where it does not run, would
//     fail it).
//
// And beside the workload: the ServiceAccount, Role and RoleBinding that
// `incumbent rbac` prints, before it, so that kubectl apply creates them
// first. A pod that names no service account (or "default") runs as
// incumbent-<lease>; one that names its own keeps it, and the Role is bound
// to it. Options.RBAC splits them out (or annotates them for Helm), so
// that they can be deleted after the pods: the sidecar releases the lease
// with them on its way out.
package inject
