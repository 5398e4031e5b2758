// Command etcd is a plain etcd server built from the Go module proxy, for
// incumbent's test harness (envtest starts it next to kube-apiserver).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
