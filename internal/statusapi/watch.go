package statusapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// writeTimeout bounds each write of an event, so that a client that stops
// reading does not hold its goroutine forever.
const writeTimeout = 10 * time.Second

// watch streams Server-Sent Events: the current View at once, then one event
// per change of leader, term or leadership, each a "data:" line of JSON
// (event type "message"). Comment lines keep an idle stream open. It ends
// when the client goes away or the server shuts down.
func (h *handler) watch(w http.ResponseWriter, r *http.Request, e Election) {
	rc := http.NewResponseController(w)
	statuses, cancel := e.Source.Subscribe()
	defer cancel()
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	heartbeat := time.NewTicker(h.opts.Heartbeat)
	defer heartbeat.Stop()
	var seq int64
	send := func(chunk []byte) bool {
		if err := rc.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return false
		}
		if _, err := w.Write(chunk); err != nil {
			return false
		}
		if err := rc.Flush(); err != nil {
			h.opts.Logger.Debug("status API: cannot flush a watch stream", "err", err)
			return false
		}
		return true
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case s := <-statuses:
			b, err := json.Marshal(h.view(e, s))
			if err != nil {
				h.opts.Logger.Error("status API: encode status", "err", err)
				return
			}
			seq++
			if !send(fmt.Appendf(nil, "id: %d\ndata: %s\n\n", seq, b)) {
				return
			}
		case <-heartbeat.C:
			if !send([]byte(": keep-alive\n\n")) {
				return
			}
		}
	}
}
