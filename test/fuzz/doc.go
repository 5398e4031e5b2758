// Package fuzz holds fuzz targets for the decoding of lease records read
// from Kubernetes (store/kube.RecordOf): whatever a hand-edited or foreign
// Lease contains, decoding must never panic and must report impossible
// values through store.Record.Validate; and for incumbent inject, which
// must never panic and must write what it accepts as a fixed point. The
// targets run their seed corpora as ordinary tests; `go test -fuzz`
// explores further.
package fuzz
