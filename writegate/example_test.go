package writegate_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/store/memory"
	"github.com/incumbent-io/incumbent/writegate"
)

// A leader's client writes while its term lasts; once the term has ended,
// its writes are refused before they leave the process, and its reads go on.
// For client-go, writegate.Config(term, cfg) gates every client built from
// cfg the same way.
func Example() {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("  server:", r.Method, r.URL.Path)
	}))
	defer server.Close()

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	e, err := election.New(election.Config{
		Store:    memory.New("example"),
		Identity: "replica-a",
		Lead: func(term *election.Term) {
			defer stop()
			client := &http.Client{Transport: writegate.RoundTripper(term, nil)}
			write := func() error {
				resp, err := client.Post(server.URL+"/state", "text/plain", strings.NewReader("x"))
				if err == nil {
					resp.Body.Close()
				}
				return err
			}
			fmt.Println("during the term:", write())
			term.Resign()
			<-term.Done()
			err := write() // a stray goroutine would do the same
			fmt.Println("after it: refused:", errors.Is(err, writegate.ErrTermEnded), "because:", errors.Is(err, election.ErrResigned))
			resp, err := client.Get(server.URL + "/state")
			if err == nil {
				resp.Body.Close()
			}
			fmt.Println("a read after it:", err)
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := e.Run(ctx); err != nil {
		fmt.Println(err)
	}
	// Output:
	//   server: POST /state
	// during the term: <nil>
	// after it: refused: true because: true
	//   server: GET /state
	// a read after it: <nil>
}
