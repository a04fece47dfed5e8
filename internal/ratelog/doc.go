// Package ratelog keeps logs about misbehaving peers from flooding: a
// [Limiter] lets one line per key (a peer, a peer and a limit) through per
// interval and counts what it held back, so the next line can say how many
// were suppressed.
package ratelog
