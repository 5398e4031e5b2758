package healthcheck

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestHTTPNamesEveryFailure(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
		case "/moved":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "/hang":
			<-r.Context().Done()
		default:
			http.Error(w, "database down", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	for _, c := range []struct{ url, want string }{
		{srv.URL + "/ok", ""},
		{srv.URL + "/bad", "503 Service Unavailable: database down"},
		{srv.URL + "/moved", "302 Found to /elsewhere"},
		{"http://" + closed + "/", "connection refused"},
		{srv.URL + "/hang", "context deadline exceeded"},
	} {
		check, err := HTTP(c.url)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		got := check(ctx)
		cancel()
		if (c.want == "") != (got == nil) || (got != nil && !strings.Contains(got.Error(), c.want)) {
			t.Errorf("GET %s: %v; want %q", c.url, got, c.want)
		}
	}
	for _, bad := range []string{"", "localhost:8080", "ftp://x/", "http://"} {
		if _, err := HTTP(bad); err == nil {
			t.Errorf("HTTP(%q) accepted", bad)
		}
	}
}

func TestExecNamesEveryFailure(t *testing.T) {
	for _, c := range []struct {
		argv []string
		want string
	}{
		{[]string{"true"}, ""},
		{[]string{"sh", "-c", "echo disk full >&2; exit 3"}, "exit status 3: disk full"},
		{[]string{"sleep", "10"}, "context deadline exceeded"},
	} {
		check, err := Exec(c.argv)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		began := time.Now()
		got := check(ctx)
		cancel()
		if (c.want == "") != (got == nil) || (got != nil && !strings.Contains(got.Error(), c.want)) {
			t.Errorf("%v: %v; want %q", c.argv, got, c.want)
		}
		if took := time.Since(began); took > 5*time.Second {
			t.Errorf("%v took %v: a timed-out check must be killed", c.argv, took)
		}
	}
	if _, err := Exec([]string{"/no/such/check"}); err == nil || !strings.Contains(err.Error(), "/no/such/check") {
		t.Errorf("a missing program: %v", err)
	}
}

func TestSplit(t *testing.T) {
	for in, want := range map[string][]string{
		`/bin/check --db`:              {"/bin/check", "--db"},
		`sh -c 'curl -fs x || exit 1'`: {"sh", "-c", "curl -fs x || exit 1"},
		`a "b c" d\ e "q\"q"`:          {"a", "b c", "d e", `q"q`},
		`  spaced   out  `:             {"spaced", "out"},
		`empty ""`:                     {"empty", ""},
	} {
		got, err := Split(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("Split(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`'open`, `"open`, `trailing\`} {
		if _, err := Split(bad); err == nil {
			t.Errorf("Split(%q) accepted", bad)
		}
	}
}
