//go:build !unix

package transport

import "net"

// nowWriter is not available on this platform: Sends queue every frame for
// the writer.
type nowWriter struct{}

func newNowWriter(net.Conn) *nowWriter { return nil }

// writeNow reports that direct writes are not available here.
func (l *link) writeNow([]byte) (int, error) { return 0, errNoDirect }
