package transport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/dstate-go/dstate/internal/fuzzcheck"
	"github.com/stretchr/testify/require"
)

func reader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

func TestHelloWireFormat(t *testing.T) {
	got := appendHello(nil, 1, "c1", "n")
	want := []byte("DSTT\x00\x01\x01\x00\x02c1\x00\x01n")
	require.Equal(t, want, got)
	require.Equal(t, handBuiltHello(1, "c1", "n"), got)

	h, err := readHandshake(reader(got))
	require.NoError(t, err)
	require.Equal(t, handshake{version: 1, kind: kindHello, cluster: "c1", clusterLen: 2, nodeID: "n", nodeIDLen: 1}, h)
}

func TestRefusalWireFormat(t *testing.T) {
	got := appendRefusal(nil, 1, refuseCluster, "no")
	require.Equal(t, []byte("DSTT\x00\x01\x02\x02\x00\x02no"), got)

	long := strings.Repeat("r", maxReasonLen+10)
	h, err := readHandshake(reader(appendRefusal(nil, 1, refuseVersion, long)))
	require.NoError(t, err)
	require.Equal(t, kindRefuse, h.kind)
	require.Equal(t, refuseVersion, h.code)
	require.Equal(t, long[:maxReasonLen], h.reason, "the reason is truncated when sent")
}

func TestReadHandshakeSkipsOversizedFields(t *testing.T) {
	id := strings.Repeat("n", 1000)
	msg := append(handBuiltHello(1, "c", id), 0, 0, 0, 1, 'f')
	r := reader(msg)
	h, err := readHandshake(r)
	require.NoError(t, err)
	require.Equal(t, "", h.nodeID)
	require.Equal(t, 1000, h.nodeIDLen)
	require.Equal(t, "c", h.cluster)
	frame, err := readFrame(r, 10)
	require.NoError(t, err, "the stream stays in step after a skipped field")
	require.Equal(t, []byte("f"), frame)
}

func TestReadHandshakeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, io.EOF},
		{"short magic", []byte("DS"), io.ErrUnexpectedEOF},
		{"bad magic", []byte("HTTP/1.1"), ErrBadMagic},
		{"unknown kind", []byte("DSTT\x00\x01\x09"), ErrMalformed},
		{"truncated cluster", []byte("DSTT\x00\x01\x01\x00\x05ab"), io.ErrUnexpectedEOF},
		{"missing node id", []byte("DSTT\x00\x01\x01\x00\x00"), io.ErrUnexpectedEOF},
		{"truncated skipped field", []byte("DSTT\x00\x01\x01\xff\xff"), io.ErrUnexpectedEOF},
		{"truncated refusal", []byte("DSTT\x00\x01\x02"), io.ErrUnexpectedEOF},
		{"truncated reason", []byte("DSTT\x00\x01\x02\x01\x00\x09abc"), io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readHandshake(reader(tt.in))
			require.ErrorIs(t, err, tt.want)
		})
	}
}

func TestReadFrame(t *testing.T) {
	tests := []struct {
		name      string
		in        []byte
		want      []byte
		wantErr   error
		wantLimit bool
	}{
		{"empty frame", []byte{0, 0, 0, 0}, []byte{}, nil, false},
		{"at the limit", append([]byte{0, 0, 0, 4}, "abcd"...), []byte("abcd"), nil, false},
		{"over the limit", append([]byte{0, 0, 0, 5}, "abcde"...), nil, ErrFrameTooLarge, true},
		{"clean end", nil, nil, io.EOF, false},
		{"short header", []byte{0, 0}, nil, io.ErrUnexpectedEOF, false},
		{"short body", []byte{0, 0, 0, 3, 'a'}, nil, io.ErrUnexpectedEOF, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readFrame(bytes.NewReader(tt.in), 4)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				var fse *FrameSizeError
				require.Equal(t, tt.wantLimit, errors.As(err, &fse))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestWriteFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	frames := [][]byte{[]byte("one"), {}, bytes.Repeat([]byte{7}, 100000)}
	for _, f := range frames {
		require.NoError(t, writeFrame(w, f))
	}
	require.NoError(t, w.Flush())
	for _, f := range frames {
		got, err := readFrame(&buf, 1<<20)
		require.NoError(t, err)
		require.Equal(t, f, got)
	}
}

// TestOversizedLengthAllocatesNothingLarge checks that a declared length is
// rejected before any allocation of that size.
func TestOversizedLengthAllocatesNothingLarge(t *testing.T) {
	in := binary.BigEndian.AppendUint32(nil, 0xFFFFFFFF)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 100 {
		_, err := readFrame(bytes.NewReader(in), 1024)
		require.ErrorIs(t, err, ErrFrameTooLarge)
	}
	runtime.ReadMemStats(&after)
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20))
}

// FuzzReadHandshake feeds arbitrary bytes to the handshake and frame
// readers: they must never panic nor return more than their limits.
func FuzzReadHandshake(f *testing.F) {
	f.Add(appendHello(nil, 1, "test", "a"))
	f.Add(append(appendHello(nil, 1, "test", "a"), 0, 0, 0, 3, 'x', 'y', 'z', 0, 0, 0, 0))
	f.Add(appendRefusal(nil, 1, refuseCluster, `cluster name "b" does not match "a"`))
	f.Add(append(appendHello(nil, 1, "", ""), 0xff, 0xff, 0xff, 0xff))
	f.Add([]byte("DSTT\x00\x01\x01\xff\xff"))
	f.Add([]byte("DSTT\x00\x01\x03"))
	f.Add([]byte("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"))
	const frameLimit = 64
	// The reader's 4 KiB buffer, two hello fields and a reason.
	const limit = 4<<10 + 2*MaxIDLen + maxReasonLen
	f.Fuzz(func(t *testing.T, data []byte) {
		var r *bufio.Reader
		var h handshake
		var err error
		fuzzcheck.Alloc(t, "readHandshake", limit, len(data), 2, func() {
			r = reader(data)
			h, err = readHandshake(r)
		})
		if err != nil {
			return
		}
		if len(h.cluster) > MaxIDLen || len(h.nodeID) > MaxIDLen || len(h.reason) > maxReasonLen {
			t.Fatalf("field over its bound: %d, %d, %d bytes", len(h.cluster), len(h.nodeID), len(h.reason))
		}
		if h.clusterLen <= MaxIDLen && len(h.cluster) != h.clusterLen {
			t.Fatalf("cluster name of %d bytes, declared %d", len(h.cluster), h.clusterLen)
		}
		// Every frame takes at least its 4-byte header and is at most
		// frameLimit bytes.
		fuzzcheck.Alloc(t, "readFrame", frameLimit, len(data), 16, func() { readFrames(t, r, frameLimit) })
	})
}

// readFrames reads frames of at most limit bytes from r until an error.
func readFrames(t *testing.T, r *bufio.Reader, frameLimit int) {
	t.Helper()
	limit := uint64(frameLimit)
	for {
		frame, err := readFrame(r, frameLimit)
		if err != nil {
			var fse *FrameSizeError
			if errors.As(err, &fse) && fse.Size <= limit {
				t.Fatalf("refused a frame of %d bytes with limit %d", fse.Size, frameLimit)
			}
			return
		}
		if len(frame) > frameLimit {
			t.Fatalf("frame of %d bytes over the limit %d", len(frame), frameLimit)
		}
	}
}
