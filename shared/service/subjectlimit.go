package service

import (
	"container/list"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/warrenhq/warren/shared/auth"
)

// SubjectLimit is a rate limit per authenticated subject (auth.Principal.Subject).
type SubjectLimit struct {
	// PerSecond is the sustained rate one subject may send, Burst how many requests may
	// come at once above it. PerSecond 0 turns the limit off.
	PerSecond float64
	Burst     int
	// MaxSubjects bounds how many subjects are remembered (default 10,000, about a
	// megabyte). Past it, the least recently seen subject is forgotten and starts afresh
	// with a full burst the next time: memory stays bounded however many subjects there are,
	// at the price of a burst more for a subject quiet long enough to be the oldest.
	MaxSubjects int
}

// RateLimitPerSubject lets each subject through at most limit's rate, and answers the rest
// with 429, a Retry-After header and an ErrorBody. It goes behind auth.Middleware; a request
// without a principal is let through (Middleware has answered it already where it runs).
// The limit is per process: with n replicas a subject may send up to n times as much, which
// is what RateLimit and a database quota are for.
func RateLimitPerSubject(limit SubjectLimit, next http.Handler) http.Handler {
	if limit.PerSecond <= 0 {
		return next
	}
	limiters := newLimiters(limit)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := auth.FromContext(r.Context())
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		if delay := limiters.take(p.Subject, time.Now()); delay > 0 {
			writeTooMany(w, delay, "too many requests from you; retry later")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// writeTooMany answers 429 with Retry-After: delay in whole seconds, at least one.
func writeTooMany(w http.ResponseWriter, delay time.Duration, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(max(delay, time.Second).Seconds()))))
	WriteError(w, http.StatusTooManyRequests, "", msg)
}

// limiters holds one token bucket per subject, most recently seen first.
type limiters struct {
	mu     sync.Mutex
	limit  rate.Limit
	burst  int
	max    int
	refill time.Duration // how long an untouched bucket takes to be full again
	byKey  map[string]*list.Element
	recent *list.List // of *bucket, most recently used at the front
}

type bucket struct {
	key      string
	limiter  *rate.Limiter
	lastSeen time.Time
}

func newLimiters(l SubjectLimit) *limiters {
	if l.MaxSubjects <= 0 {
		l.MaxSubjects = 10_000
	}
	l.Burst = max(l.Burst, 1)
	return &limiters{
		limit: rate.Limit(l.PerSecond), burst: l.Burst, max: l.MaxSubjects,
		refill: time.Duration(float64(l.Burst) / l.PerSecond * float64(time.Second)),
		byKey:  map[string]*list.Element{}, recent: list.New(),
	}
}

// take spends a token of key's bucket at now, or returns how long until one is there
// (spending nothing).
func (l *limiters) take(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	// A bucket untouched for refill is full again, the same as a new one: forgetting it
	// loses nothing. The idle ones are at the back; each is removed once, so this costs
	// O(1) per call on average.
	for e := l.recent.Back(); e != nil && now.Sub(e.Value.(*bucket).lastSeen) >= l.refill; e = l.recent.Back() {
		l.remove(e)
	}
	e, ok := l.byKey[key]
	if !ok {
		if l.recent.Len() >= l.max {
			l.remove(l.recent.Back())
		}
		e = l.recent.PushFront(&bucket{key: key, limiter: rate.NewLimiter(l.limit, l.burst)})
		l.byKey[key] = e
	}
	b := e.Value.(*bucket)
	l.recent.MoveToFront(e)
	b.lastSeen = now
	res := b.limiter.ReserveN(now, 1)
	if delay := res.DelayFrom(now); delay > 0 {
		res.CancelAt(now) // a refused request must not use up tokens
		return delay
	}
	return 0
}

func (l *limiters) remove(e *list.Element) {
	delete(l.byKey, e.Value.(*bucket).key)
	l.recent.Remove(e)
}

// len is how many subjects are remembered.
func (l *limiters) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.recent.Len()
}
