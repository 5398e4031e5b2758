package etcd

import (
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"github.com/incumbent-io/incumbent/store"
)

// Format is the version of the value layout this package reads and writes.
// A value with another format is malformed to this version.
const Format = 1

// Value is the JSON layout of the key's value, format 1. Times are RFC 3339
// with nanoseconds and omitted when zero; LeaseDuration is a Go duration
// string such as "15s". Empty optional fields are omitted.
//
//	{"format":1,"holder":"db-0","instance":"3f2a…","leaseDuration":"15s",
//	 "acquireTime":"2026-01-02T15:04:05.123456789Z","renewTime":"…","transitions":4}
type Value struct {
	Format           int       `json:"format"`
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

// knownFields are the JSON names of Value's fields.
var knownFields = map[string]bool{
	"format": true, "holder": true, "instance": true, "leaseDuration": true,
	"acquireTime": true, "renewTime": true, "transitions": true, "term": true,
	"handoffTo": true, "transferTo": true, "releaseRequested": true,
}

// extra holds the fields of a value that this version does not know, kept
// so that an Update does not drop what a newer version wrote.
type extra map[string]json.RawMessage

// decode parses a stored value. Every error wraps store.ErrMalformed. The
// returned record has no Version.
func decode(raw []byte) (store.Record, extra, error) {
	bad := func(format string, args ...any) (store.Record, extra, error) {
		return store.Record{}, nil, fmt.Errorf("%w: %s", store.ErrMalformed, fmt.Sprintf(format, args...))
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return bad("value is not a JSON object: %q", abbreviate(raw))
	}
	fv, ok := fields["format"]
	if !ok {
		return bad("value has no \"format\" field: %q", abbreviate(raw))
	}
	var format int
	if err := json.Unmarshal(fv, &format); err != nil {
		return bad("\"format\" is %s, not a number", fv)
	}
	if format != Format {
		return bad("value has format %d; this version of incumbent reads format %d only (written by a newer version?)", format, Format)
	}
	var v Value
	if err := json.Unmarshal(raw, &v); err != nil {
		return bad("%v", err)
	}
	var lease time.Duration
	if v.LeaseDuration != "" {
		d, err := time.ParseDuration(v.LeaseDuration)
		if err != nil {
			return bad("\"leaseDuration\" %q is not a duration such as \"15s\"", v.LeaseDuration)
		}
		lease = d
	}
	var ext extra
	for k, raw := range fields {
		if !knownFields[k] {
			if ext == nil {
				ext = extra{}
			}
			ext[k] = raw
		}
	}
	rec := store.Record{
		Holder:           v.Holder,
		Instance:         v.Instance,
		LeaseDuration:    lease,
		AcquireTime:      v.AcquireTime,
		RenewTime:        v.RenewTime,
		Transitions:      v.Transitions,
		Term:             v.Term,
		HandoffTo:        v.HandoffTo,
		TransferTo:       v.TransferTo,
		ReleaseRequested: v.ReleaseRequested,
	}
	return rec, ext, nil
}

// encode renders rec in the current format, with the unknown fields of the
// value it replaces. rec.Version and rec.Revision are not stored: they are
// the key's mod revision.
func encode(rec store.Record, ext extra) (string, error) {
	v := Value{
		Format:           Format,
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
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode lease record: %w", err)
	}
	if len(ext) == 0 {
		return string(b), nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return "", fmt.Errorf("encode lease record: %w", err)
	}
	merged := maps.Clone(ext)
	maps.Copy(merged, fields) // known fields always come from rec
	b, err = json.Marshal(merged)
	if err != nil {
		return "", fmt.Errorf("encode lease record: %w", err)
	}
	return string(b), nil
}

// abbreviate shortens a value for an error message.
func abbreviate(raw []byte) string {
	const limit = 120
	if len(raw) <= limit {
		return string(raw)
	}
	return string(raw[:limit]) + "…"
}
