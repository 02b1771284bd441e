package mailing

import "sync"

// unconfirmed remembers the mails this process has handed to the SMTP server whose
// confirm has not committed yet (the database was away or too slow for the attempt's
// deadline). A later attempt at the same message in this process then only confirms:
// the row still says "sending", and without this memory the attempt would have to send
// again, as it must for an attempt that died with its process. An entry lives until its
// confirm commits, so the set holds at most the mails held by a paused consumer.
type unconfirmed struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

func (u *unconfirmed) add(id string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.ids == nil {
		u.ids = map[string]struct{}{}
	}
	u.ids[id] = struct{}{}
}

func (u *unconfirmed) has(id string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	_, ok := u.ids[id]
	return ok
}

func (u *unconfirmed) forget(id string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.ids, id)
}
