package file

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/incumbent-io/incumbent/store"
)

// FormatVersion is the version of the record layout this package writes and
// the only one it reads. Format 2 added "revision" and "term".
const FormatVersion = 2

// diskRecord is the JSON layout of a record file.
type diskRecord struct {
	Format           int       `json:"format"`
	Generation       int64     `json:"generation"`
	Incarnation      string    `json:"incarnation"`
	Revision         int64     `json:"revision"`
	Holder           string    `json:"holder"`
	Instance         string    `json:"instance,omitempty"`
	LeaseDuration    string    `json:"leaseDuration"`
	AcquireTime      time.Time `json:"acquireTime,omitzero"`
	RenewTime        time.Time `json:"renewTime,omitzero"`
	Transitions      int64     `json:"transitions"`
	Term             int64     `json:"term,omitempty"`
	HandoffTo        string    `json:"handoffTo,omitempty"`
	TransferTo       string    `json:"transferTo,omitempty"`
	ReleaseRequested bool      `json:"releaseRequested,omitempty"`
}

// version identifies one state of a record: see the package documentation.
type version struct {
	gen         int64
	incarnation string
}

func (v version) String() string { return strconv.FormatInt(v.gen, 10) + "." + v.incarnation }

// parseVersion reads a Version this package produced.
func parseVersion(s string) (version, error) {
	g, inc, ok := strings.Cut(s, ".")
	n, err := strconv.ParseInt(g, 10, 64)
	if !ok || err != nil || n < 1 || !validIncarnation(inc) {
		return version{}, fmt.Errorf("%q is not a file store version (GENERATION.INCARNATION)", s)
	}
	return version{gen: n, incarnation: inc}, nil
}

func validIncarnation(s string) bool {
	if len(s) != 16 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// newIncarnation returns a random incarnation marker.
func newIncarnation() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate incarnation: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// encode renders rec at version v as the bytes of a record file. It stores
// rec.Revision, which the caller sets; rec.Version is ignored.
func encode(rec store.Record, v version) ([]byte, error) {
	d := diskRecord{
		Format:           FormatVersion,
		Generation:       v.gen,
		Incarnation:      v.incarnation,
		Revision:         rec.Revision,
		Holder:           rec.Holder,
		Instance:         rec.Instance,
		LeaseDuration:    rec.LeaseDuration.String(),
		AcquireTime:      rec.AcquireTime,
		RenewTime:        rec.RenewTime,
		Transitions:      rec.Transitions,
		Term:             rec.Term,
		HandoffTo:        rec.HandoffTo,
		TransferTo:       rec.TransferTo,
		ReleaseRequested: rec.ReleaseRequested,
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	return append(b, '\n'), nil
}

// decode parses the bytes of a record file. Every error wraps
// store.ErrMalformed.
func decode(data []byte) (store.Record, version, error) {
	bad := func(format string, args ...any) (store.Record, version, error) {
		return store.Record{}, version{}, fmt.Errorf("%w: %s", store.ErrMalformed, fmt.Sprintf(format, args...))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var d diskRecord
	if err := dec.Decode(&d); err != nil {
		return bad("not a record: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return bad("unexpected data after the record")
	}
	if d.Format != FormatVersion {
		return bad("format %d is not supported (this version reads format %d)", d.Format, FormatVersion)
	}
	if d.Generation < 1 {
		return bad("generation %d is not positive", d.Generation)
	}
	if !validIncarnation(d.Incarnation) {
		return bad("incarnation %q is not 16 lowercase hex digits", d.Incarnation)
	}
	if d.Revision < 1 {
		return bad("revision %d is not positive", d.Revision)
	}
	dur, err := time.ParseDuration(d.LeaseDuration)
	if err != nil {
		return bad("leaseDuration: %v", err)
	}
	v := version{gen: d.Generation, incarnation: d.Incarnation}
	rec := store.Record{
		Holder:           d.Holder,
		Instance:         d.Instance,
		LeaseDuration:    dur,
		AcquireTime:      d.AcquireTime,
		RenewTime:        d.RenewTime,
		Transitions:      d.Transitions,
		Term:             d.Term,
		HandoffTo:        d.HandoffTo,
		TransferTo:       d.TransferTo,
		ReleaseRequested: d.ReleaseRequested,
		Version:          v.String(),
		Revision:         d.Revision,
	}
	if err := rec.Validate(); err != nil {
		return store.Record{}, version{}, err // already wraps store.ErrMalformed
	}
	return rec, v, nil
}
