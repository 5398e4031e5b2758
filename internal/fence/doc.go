// Package fence writes the admission policy that makes the Kubernetes API
// server itself refuse a stale leader's writes: a ValidatingAdmissionPolicy
// whose parameter is the election's own Lease, and its binding.
//
// The policy matches the requests of one service account (matchConditions)
// to the resources and operations named, and admits such a request only if
// it comes from the pod that holds the Lease. A bound service-account token
// (every token the kubelet projects into a pod) names its pod in the
// request's user info (authentication.kubernetes.io/pod-name and
// .../pod-uid). The check, in order:
//
//   - the Lease names no holder (released, or never taken): refused;
//   - the Lease records its holder's pod UID for its current term (the
//     annotation incumbent.io/holder-pod-uid that the sidecar writes when
//     it knows its UID, see store/kube): admitted only if the request's pod
//     UID is that one, so a StatefulSet pod re-created under the same name
//     is refused;
//   - otherwise (a holder that records no UID: a sidecar without POD_UID,
//     or a client-go candidate): admitted only if the request's pod name is
//     the holder's identity. Options.RequirePodUID refuses this case
//     instead.
//
// Reads (get, list, watch) never pass through validating admission, and
// requests of other users are not matched while the Lease exists. While it
// is missing, the API server refuses every user's writes to the fenced
// resources (it looks the parameter up before it evaluates the match
// conditions), so the policy matches only Options.Namespaces, and YAML
// prints the Lease first, so that it exists from the moment the fence is
// applied. The
// election's own Lease is always left out, so that candidates can take it
// and create it again after a deletion: every Lease of that name, in every
// namespace, since a rule that excludes it cannot name a namespace.
//
// What it does not guarantee: each API server evaluates the policy against
// its own informer's copy of the Lease, which lags the Lease by
// milliseconds, so in that window, and longer with several API servers or a
// slow one, a write of the previous holder can still be admitted; writes
// that do not go through the Kubernetes API are not covered. See
// docs/fencing.md.
package fence
