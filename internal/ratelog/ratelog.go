package ratelog

import (
	"sync"
	"time"
)

// DefaultInterval is the interval of a zero Limiter.
const DefaultInterval = time.Minute

// maxKeys bounds the keys remembered; past it, keys idle for an interval are
// forgotten, and if none are, the oldest half is.
const maxKeys = 4096

// Limiter lets at most one event per key through per Interval. The zero
// value is ready to use, with DefaultInterval and the wall clock; it is safe
// for concurrent use.
type Limiter struct {
	// Interval is the least time between two events let through for one
	// key; zero means DefaultInterval.
	Interval time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	mu   sync.Mutex
	keys map[string]*entry
}

type entry struct {
	last       time.Time
	suppressed uint64
}

// Allow reports whether an event for key should be logged now. When it
// returns true, suppressed is the number of events for key held back since
// the last one let through.
func (l *Limiter) Allow(key string) (ok bool, suppressed uint64) {
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	t := now()
	every := l.Interval
	if every <= 0 {
		every = DefaultInterval
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.keys == nil {
		l.keys = make(map[string]*entry)
	}
	e, found := l.keys[key]
	if found && t.Sub(e.last) < every {
		e.suppressed++
		return false, 0
	}
	if !found {
		if len(l.keys) >= maxKeys {
			l.prune(t, every)
		}
		e = &entry{}
		l.keys[key] = e
	}
	suppressed, e.suppressed, e.last = e.suppressed, 0, t
	return true, suppressed
}

// prune forgets keys idle for an interval; if that frees nothing, it forgets
// the older half. l.mu must be held.
func (l *Limiter) prune(t time.Time, every time.Duration) {
	for k, e := range l.keys {
		if t.Sub(e.last) >= every {
			delete(l.keys, k)
		}
	}
	if len(l.keys) < maxKeys {
		return
	}
	var total time.Duration
	for _, e := range l.keys {
		total += t.Sub(e.last)
	}
	mean := total / time.Duration(len(l.keys))
	for k, e := range l.keys {
		if t.Sub(e.last) >= mean {
			delete(l.keys, k)
		}
	}
}

// Len returns the number of keys remembered.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}
