package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/dstate-go/dstate/internal/fuzzcheck"
)

// TestAnnouncedFrameSizeIsNotAllocatedAhead: four bytes announcing a 16 MiB
// frame, followed by three, make the reader allocate at most one growth
// step (growStep, 64 KiB) ahead of what arrived, not what was announced, at
// the default limits.
func TestAnnouncedFrameSizeIsNotAllocatedAhead(t *testing.T) {
	for _, more := range []uint32{0, moreFragments} {
		in := binary.BigEndian.AppendUint32(nil, (DefaultMaxFrameSize-1)|more)
		in = append(in, 1, 2, 3)
		var err error
		fuzzcheck.Alloc(t, "readMessage", growStep, len(in), 4, func() {
			_, err = readMessage(bytes.NewReader(in), DefaultMaxFrameSize, DefaultMaxMessageSize)
		})
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("a truncated frame: got %v, want io.ErrUnexpectedEOF", err)
		}
	}
}
