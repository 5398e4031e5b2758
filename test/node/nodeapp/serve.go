package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
)

// serve answers every request with the pod's name until a signal.
func serve(sigs <-chan os.Signal) error {
	name := env("POD_NAME", "unknown")
	ln, err := net.Listen("tcp", ":8080")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, name)
	})}
	go func() { _ = srv.Serve(ln) }()
	<-sigs
	return srv.Shutdown(context.Background())
}
