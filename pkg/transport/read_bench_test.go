package transport

import (
	"bufio"
	"bytes"
	"testing"
)

// BenchmarkReadSmallFrames measures reading 40-byte messages (a delta's
// size) from a connection's read buffer, as an inbound connection does, with
// the frames lent to the receiver and given back.
func BenchmarkReadSmallFrames(b *testing.B) {
	var stream bytes.Buffer
	w := bufio.NewWriter(&stream)
	frame := bytes.Repeat([]byte{7}, 40)
	for range 4096 {
		if err := writeMessage(w, frame, 1<<20); err != nil {
			b.Fatal(err)
		}
	}
	_ = w.Flush()
	in := stream.Bytes()
	src := bytes.NewReader(in)
	br := bufio.NewReaderSize(src, 64<<10)
	m := msgReader{r: br, br: br, maxFrame: 1 << 20, maxMessage: 1 << 20, free: make(chan []byte, 4)}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		f, err := m.next()
		if err != nil {
			src.Reset(in)
			br.Reset(src)
			continue
		}
		m.giveBack(f)
	}
}
