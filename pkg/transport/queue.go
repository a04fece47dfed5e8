package transport

import "sync"

// frameQueue is a peer's bounded queue of frames: Send appends under a
// mutex, and the writer takes everything queued at once. (A channel cost a
// lock on each side for every frame, and at high rates the sender and the
// writer contended for it on every frame.)
type frameQueue struct {
	mu     sync.Mutex
	frames [][]byte
	limit  int
	// ready has capacity 1: a push that made the queue non-empty signals
	// it, and so does the writer when it leaves frames behind for the next
	// connection. A signal may find the queue empty.
	ready chan struct{}
}

func newFrameQueue(limit int) *frameQueue {
	return &frameQueue{limit: limit, ready: make(chan struct{}, 1)}
}

// push appends f and reports true, or reports false when the queue holds
// limit frames.
func (q *frameQueue) push(f []byte) bool {
	q.mu.Lock()
	if len(q.frames) >= q.limit {
		q.mu.Unlock()
		return false
	}
	q.frames = append(q.frames, f)
	first := len(q.frames) == 1
	q.mu.Unlock()
	if first {
		q.signal()
	}
	return true
}

// signal wakes the writer (a wake-up already pending is enough).
func (q *frameQueue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take returns every queued frame, in order, and leaves spare (emptied) as
// the queue's storage.
func (q *frameQueue) take(spare [][]byte) [][]byte {
	q.mu.Lock()
	out := q.frames
	q.frames = spare[:0]
	q.mu.Unlock()
	return out
}

// len returns the number of frames queued.
func (q *frameQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.frames)
}

// drain empties the queue and returns how many frames it held.
func (q *frameQueue) drain() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.frames)
	q.frames = nil
	return n
}
