package election

import "sync"

// hub hands the latest Status to subscribers. A slow subscriber never blocks
// the election: it misses intermediate statuses and gets the newest one.
type hub struct {
	mu   sync.Mutex
	last Status
	subs map[chan Status]struct{}
}

// current returns the latest status published.
func (h *hub) current() Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// publish records s, and hands it to subscribers unless it differs from the
// previous status only in renewal stamps.
func (h *hub) publish(s Status) {
	h.mu.Lock()
	defer h.mu.Unlock()
	changed := !sameStatus(h.last, s)
	h.last = s
	if !changed {
		return
	}
	for c := range h.subs {
		select {
		case <-c:
		default:
		}
		c <- s
	}
}

// subscribe returns a channel that holds the current status at once, then
// each change. cancel stops delivery; the channel is not closed.
func (h *hub) subscribe() (ch <-chan Status, cancel func()) {
	c := make(chan Status, 1)
	h.mu.Lock()
	if h.subs == nil {
		h.subs = map[chan Status]struct{}{}
	}
	h.subs[c] = struct{}{}
	c <- h.last
	h.mu.Unlock()
	return c, func() {
		h.mu.Lock()
		delete(h.subs, c)
		h.mu.Unlock()
	}
}
