package kube

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
)

// WatchMode says how the Stores of one Client learn of changes to their
// Leases.
type WatchMode int

const (
	// WatchAuto, the default: a Store watches its own Lease while it is the
	// only Store of its Client in its namespace; once there are several,
	// they share one watch of the namespace's Leases (WatchNamespace). If
	// the API server refuses that watch (it needs list and watch on every
	// Lease of the namespace, which a Role limited by resourceNames does not
	// grant), the Client says so once in its log and falls back to
	// WatchEach for that namespace.
	WatchAuto WatchMode = iota
	// WatchEach: every Store watches its own Lease (a field selector on its
	// name). It needs only get and watch on that Lease, and costs the API
	// server one watcher per candidate.
	WatchEach
	// WatchNamespace: the Stores of one namespace share one watch of all
	// its Leases, fanned out by name: one stream and one watcher on the API
	// server for any number of elections. It needs list and watch on leases
	// in the namespace, and the Client keeps the namespace's Leases in
	// memory. A refusal is not fallen back from: each Watch fails with it.
	WatchNamespace
)

// ClientOptions tune a Client.
type ClientOptions struct {
	// QPS and Burst limit the requests of each Store of the Client, each on
	// its own: a busy election cannot starve another's renewals. Zero means
	// DefaultQPS and DefaultBurst.
	QPS   float32
	Burst int
	// UserAgent identifies the client to the API server. Default
	// "incumbent".
	UserAgent string
	// PodUID is the UID of the candidates' pod: see Options.PodUID. It
	// applies to every Store of the Client, so a Client whose Stores stand
	// for candidates of different pods must leave it empty.
	PodUID string
	// Watch says how the Stores watch their Leases. Default WatchAuto.
	Watch WatchMode
	// MaxInFlight bounds the requests the Client's Stores have in flight
	// together (watches aside); the others wait, renewals and releases
	// first, then the rest in order of arrival. Zero means
	// DefaultMaxInFlight.
	MaxInFlight int
	// Logger receives the Client's few logs (a shared watch refused, and
	// so given up). Default: none.
	Logger *slog.Logger
}

// Client is one connection to an API server for the Lease stores of any
// number of elections, as a process that campaigns in many elections needs
// (one lease per shard, per tenant, per bucket).
//
// Its Stores share one HTTP/2 connection, and, in a namespace where there
// are several (see WatchMode), one watch. Each keeps its own rate limiter,
// and the election above it its own timeouts, so that one busy election
// cannot hold up another's renewals. The connection is the Client's own:
// it never shares a transport (and so a queue of requests) with the
// process's other clients, however their rest.Config is made.
type Client struct {
	http   *http.Client
	config *rest.Config // for each Store's REST client
	params runtime.ParameterCodec
	opts   ClientOptions
	log    *slog.Logger
	limit  *inflight

	mu      sync.Mutex
	stores  map[string]int  // Stores made, by namespace
	hubs    map[string]*hub // shared watches, by namespace
	refused map[string]bool // namespaces whose shared watch was refused (WatchAuto)
}

// NewClient returns a Client for the API server cfg describes. It makes no
// request.
func NewClient(cfg *rest.Config, opts ClientOptions) (*Client, error) {
	if cfg == nil {
		return nil, errors.New("kube store: a rest.Config is required")
	}
	if opts.QPS == 0 {
		opts.QPS = DefaultQPS
	}
	if opts.Burst == 0 {
		opts.Burst = DefaultBurst
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "incumbent"
	}
	if opts.MaxInFlight == 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.MaxInFlight < 0 {
		return nil, fmt.Errorf("kube store: MaxInFlight must not be negative (got %d)", opts.MaxInFlight)
	}
	if opts.QPS < 0 || opts.Burst < 0 {
		return nil, fmt.Errorf("kube store: QPS and Burst must not be negative (got %v, %d)", opts.QPS, opts.Burst)
	}
	if opts.Watch < WatchAuto || opts.Watch > WatchNamespace {
		return nil, fmt.Errorf("kube store: unknown watch mode %d", opts.Watch)
	}
	if msgs := validation.IsValidLabelValue(opts.PodUID); len(msgs) > 0 || strings.Contains(opts.PodUID, "/") {
		return nil, fmt.Errorf("kube store: invalid pod UID %q: want the pod's metadata.uid, e.g. from the downward API", opts.PodUID)
	}
	c, params, err := leaseConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kube store: build client: %w", err)
	}
	c.UserAgent = opts.UserAgent
	// A dialer of its own keeps client-go from sharing a cached transport
	// (and its HTTP/2 connection) with the process's other clients.
	c.Dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	hc, err := rest.HTTPClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("kube store: build client: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Client{http: hc, config: c, params: params, opts: opts, log: log, limit: newInflight(opts.MaxInFlight),
		stores: map[string]int{}, hubs: map[string]*hub{}, refused: map[string]bool{}}, nil
}

// Store returns the Store of the Lease namespace/name on this Client's
// connection, with a rate limiter of its own.
func (c *Client) Store(namespace, name string) (*Store, error) {
	if err := validateName(namespace, name); err != nil {
		return nil, err
	}
	lc, err := c.leaseClient(namespace)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.stores[namespace]++
	c.mu.Unlock()
	return &Store{leases: lc, namespace: namespace, name: name, podUID: c.opts.PodUID, client: c}, nil
}

// leaseClient returns a Lease client of namespace on the shared connection,
// with a rate limiter of its own.
func (c *Client) leaseClient(namespace string) (*leaseClient, error) {
	rc := *c.config
	rc.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(c.opts.QPS, c.opts.Burst)
	return newLeaseClientFor(&rc, c.params, c.http, namespace)
}

// sharedHub returns the shared watch of namespace for a Store's Watch, or
// nil when the Store is to watch its own Lease.
func (c *Client) sharedHub(namespace string) (*hub, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.opts.Watch {
	case WatchEach:
		return nil, nil
	case WatchAuto:
		if c.stores[namespace] < 2 || c.refused[namespace] {
			return nil, nil
		}
	}
	h := c.hubs[namespace]
	if h == nil {
		lc, err := c.leaseClient(namespace)
		if err != nil {
			return nil, err
		}
		h = newHub(lc, namespace, c.opts.Watch == WatchAuto, c.hubRefused)
		c.hubs[namespace] = h
	}
	return h, nil
}

// hubRefused records that the API server refused the shared watch of
// namespace: under WatchAuto its Stores watch their own Leases from now on.
func (c *Client) hubRefused(namespace string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refused[namespace] {
		return
	}
	c.refused[namespace] = true
	c.log.Warn(`cannot watch all the Leases of the namespace at once (it needs verbs "list" and "watch" on resource "leases" without resourceNames); every election watches its own Lease instead, which costs the API server one watcher per election`,
		"namespace", namespace, "err", err)
}

// known returns the Lease namespace/name as the shared watch of its
// namespace knows it, if that watch runs and knows one.
func (c *Client) known(namespace, name string) *coordinationv1.Lease {
	c.mu.Lock()
	h := c.hubs[namespace]
	c.mu.Unlock()
	if h == nil {
		return nil
	}
	return h.known(name)
}

// position returns the revision up to which the shared watch of namespace
// has seen every change, or 0 when it does not run or has not listed.
func (c *Client) position(namespace string) int64 {
	c.mu.Lock()
	h := c.hubs[namespace]
	c.mu.Unlock()
	if h == nil {
		return 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.synced {
		return 0
	}
	return h.rv
}
