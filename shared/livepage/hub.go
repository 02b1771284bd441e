package livepage

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
)

// hub holds the page's latest state as server-sent events, one per key (the config, each
// panel, each order's row), and sends every change to every subscribed stream.
type hub struct {
	mu    sync.Mutex
	keys  []string          // in the order they were first set
	state map[string][]byte // key -> its latest event, formatted
	subs  map[chan []byte]struct{}
}

func newHub() *hub {
	return &hub{state: map[string][]byte{}, subs: map[chan []byte]struct{}{}}
}

// subBuffer is how many events a stream may lag behind before it is dropped.
const subBuffer = 256

// set makes v the state of key, sent as an event of type event, and sends it to every
// stream.
func (h *hub) set(event, key string, v any) {
	msg := format(event, v)
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.state[key]; !ok {
		h.keys = append(h.keys, key)
	}
	h.state[key] = msg
	h.broadcast(msg)
}

// publish sends v to every stream without keeping it: a notice, not state.
func (h *hub) publish(event string, v any) {
	msg := format(event, v)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.broadcast(msg)
}

// forget drops key from the state that new streams get.
func (h *hub) forget(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.state, key)
	for i, k := range h.keys {
		if k == key {
			h.keys = append(h.keys[:i], h.keys[i+1:]...)
			break
		}
	}
}

func (h *hub) broadcast(msg []byte) {
	for sub := range h.subs {
		select {
		case sub <- msg:
		default:
			// Too far behind: closing the channel ends its stream; the browser's
			// EventSource reconnects and starts again from a snapshot.
			delete(h.subs, sub)
			close(sub)
		}
	}
}

// subscribe returns a stream of changes and the state to send before them.
func (h *hub) subscribe() (chan []byte, [][]byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	sub := make(chan []byte, subBuffer)
	h.subs[sub] = struct{}{}
	snapshot := make([][]byte, 0, len(h.keys))
	for _, k := range h.keys {
		snapshot = append(snapshot, h.state[k])
	}
	return sub, snapshot
}

func (h *hub) unsubscribe(sub chan []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[sub]; ok {
		delete(h.subs, sub)
		close(sub)
	}
}

// format is one server-sent event: its type and its JSON on one data line.
func format(event string, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		data, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	return fmt.Appendf(nil, "event: %s\ndata: %s\n\n", event, data)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
