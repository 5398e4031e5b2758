package dist

import (
	"bytes"
	"encoding/pem"
	"fmt"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// CACertificates returns Mozilla's trusted roots (the NSS store, as
// golang.org/x/crypto/x509roots/fallback/bundle embeds it, pinned by
// go.sum) as a PEM bundle, in the bundle's order.
//
// Why this source: the building machine's /etc/ssl/certs differs between
// machines and days, so the image would not be reproducible; this module
// is versioned, checksummed, and kept current by the Go team. A root that
// NSS trusts only with a constraint (a distrust-after date, which a PEM
// file cannot express) is left out: the image then trusts less, never
// more, than Mozilla does. incumbent itself verifies the Kubernetes API
// server and etcd with their own CAs; these roots serve anything else.
func CACertificates() ([]byte, error) {
	var b bytes.Buffer
	for root := range bundle.Roots() {
		if root.Constraint != nil {
			continue
		}
		if err := pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: root.Certificate}); err != nil {
			return nil, fmt.Errorf("CA certificates: %w", err)
		}
	}
	if b.Len() == 0 {
		return nil, fmt.Errorf("CA certificates: the bundle is empty")
	}
	return b.Bytes(), nil
}
