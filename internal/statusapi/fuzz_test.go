package statusapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// FuzzHandler feeds arbitrary methods, paths, queries and headers to the
// API: it must never panic, must answer with a known status code, and every
// 200 answer of a JSON endpoint must be valid JSON.
func FuzzHandler(f *testing.F) {
	for _, seed := range [][4]string{
		{"GET", "/", "", ""},
		{"GET", "/v1/status", "", "application/json"},
		{"GET", "/v1/watch", "", "text/event-stream"},
		{"HEAD", "/readyz/leader", "", ""},
		{"GET", "/healthz", "verbose=1", ""},
		{"POST", "/v1/status", "", ""},
		{"GET", "/../v1/status", "", ""},
		{"GET", "//v1//status/", "a=%zz", ""},
		{"DELETE", "/metrics", "", "*/*"},
		{"GET", "/v1/status\x00", "", "\xff"},
		{"", "", "", ""},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3])
	}
	leader, _ := pair(f)
	h, err := New(Options{Source: leader, Lease: "db", Namespace: "ns",
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, path, query, accept string) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // a watch must return at once
		r := (&http.Request{Method: method, URL: &url.URL{Path: path, RawQuery: query},
			Header: http.Header{"Accept": {accept}}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			RequestURI: path}).WithContext(ctx)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case 200, 301, 307, 308, 400, 404, 405, 503:
		default:
			t.Fatalf("%s %q: status %d", method, path, w.Code)
		}
		if w.Code == 200 && (path == "/" || path == "/v1/status") && (method == "GET" || method == "") {
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("%s %q: invalid JSON %q", method, path, w.Body.String())
			}
		}
	})
}
