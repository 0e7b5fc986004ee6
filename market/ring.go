package market

// ring is a fixed-size buffer that keeps the newest values pushed into it. It is not safe for concurrent use; its
// owner guards it.
type ring[T any] struct {
	buf  []T
	next int // where the next push goes
	n    int // how many values it holds, at most len(buf)
}

// newRing returns an empty ring that holds up to size values.
func newRing[T any](size int) ring[T] {
	return ring[T]{buf: make([]T, size)}
}

// push adds v, dropping the oldest value when the ring is full.
func (r *ring[T]) push(v T) {
	r.buf[r.next] = v
	r.next = (r.next + 1) % len(r.buf)
	if r.n < len(r.buf) {
		r.n++
	}
}

// len returns how many values the ring holds.
func (r *ring[T]) len() int { return r.n }

// last returns a copy of the newest k values, oldest first; k must be between 0 and r.len().
func (r *ring[T]) last(k int) []T {
	out := make([]T, k)
	start := r.next - k
	if start < 0 {
		start += len(r.buf)
	}
	n := copy(out, r.buf[start:])
	copy(out[n:], r.buf) // the part that wrapped around, if any
	return out
}
