package logging

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
)

// KlogName is the "logger" attribute of every record that comes from klog,
// that is from client-go; a named klog logger adds "/" and its name.
const KlogName = "klog"

// klog's logger is process-global, and klog.SetLogger is not safe while
// any goroutine logs through klog. So it is set once, at the first
// RouteKlog (before this process made any client-go call), to a handler
// that forwards to the current route; RouteKlog then only swaps that route,
// atomically.
var (
	klogOnce  sync.Once
	klogRoute atomic.Pointer[route]
)

type route struct{ h slog.Handler }

// RouteKlog makes klog log through h until restore is called, which puts
// back the route it replaced (and which is idempotent). Outside any route,
// klog logs through slog.Default().
//
// Once klog has a logger, none of its lines is written by klog itself:
// klog.Info, Warning, Error and their S, f and ln forms, and V(n) lines
// that klog's verbosity (0: incumbent registers no klog flags) lets
// through, all become records of h, with the attribute logger=klog (see KlogName).
// Errors are level ERROR with the error as "err"; klog's warnings, like its
// infos, are level INFO, as klog hands them on without their severity. A
// klog.Fatal would still exit the process.
//
// The route is global: invocations that overlap in one process (parallel
// tests) share the latest one. klog itself stays set to the forwarder for
// the life of the process; that global is the one RouteKlog leaves behind.
func RouteKlog(h slog.Handler) (restore func()) {
	klogOnce.Do(func() {
		// Not contextual: client-go's klog.FromContext(ctx).V(n) stays
		// behind klog's own verbosity, instead of reaching h at level -n.
		klog.SetLogger(logr.FromSlogHandler(forwarder{}))
	})
	r := &route{h}
	prev := klogRoute.Swap(r)
	return sync.OnceFunc(func() { klogRoute.CompareAndSwap(r, prev) })
}

// forwarder is the slog.Handler klog logs through: each record goes to the
// current route, with the attributes and groups added to the forwarder
// applied again on that route's handler.
type forwarder struct {
	ops []func(slog.Handler) slog.Handler
}

func (forwarder) base() slog.Handler {
	if r := klogRoute.Load(); r != nil {
		return r.h
	}
	return slog.Default().Handler()
}

func (f forwarder) handler() slog.Handler {
	h := f.base()
	for _, op := range f.ops {
		h = op(h)
	}
	return h
}

func (f forwarder) Enabled(ctx context.Context, l slog.Level) bool { return f.base().Enabled(ctx, l) }

// Handle adds logger=klog, or logger=klog/NAME for a klog logger named
// NAME (klog gives the name as a "logger" value of its own).
func (f forwarder) Handle(ctx context.Context, r slog.Record) error {
	name := KlogName
	attrs := make([]slog.Attr, 1, 1+r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "logger" {
			name += "/" + a.Value.String()
		} else {
			attrs = append(attrs, a)
		}
		return true
	})
	attrs[0] = slog.String("logger", name)
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(attrs...)
	return f.handler().Handle(ctx, out)
}

func (f forwarder) WithAttrs(as []slog.Attr) slog.Handler {
	return forwarder{ops: append(slices.Clip(f.ops), func(h slog.Handler) slog.Handler { return h.WithAttrs(as) })}
}

func (f forwarder) WithGroup(name string) slog.Handler {
	return forwarder{ops: append(slices.Clip(f.ops), func(h slog.Handler) slog.Handler { return h.WithGroup(name) })}
}
