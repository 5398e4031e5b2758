//go:build node

// Package kubenode runs a real single-node Kubernetes cluster for the
// real-node test tier (test/node, build tag node): etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler on loopback, containerd (with
// runc) and a real kubelet, pods on a bridge of the test's own. Everything
// it changes on the host is recorded before the change and undone at Stop,
// or, if a run ended without its teardown, by the next Start.
//
// The Kubernetes binaries are built by hack/nodebin.sh from the Go module
// proxy; containerd, runc and the CNI plugins come from Debian's packages
// (hack/node-deps.sh). It needs root. Images are never pulled: the tests
// import the tarballs they build (Options.Images, ImportImage), and every
// container's image must already be on the node.
//
// Pods reach the API server only through HostIP:APIPort, a forwarder to
// the loopback API server (there is no kube-proxy, so the kubernetes
// Service's cluster IP does not work from a pod): set
// KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT to them in every
// container that uses in-cluster configuration. Nothing from the bridge is
// forwarded to any other interface.
package kubenode
