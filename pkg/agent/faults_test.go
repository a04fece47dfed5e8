package agent

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
)

func TestFaultSetReplacesTheDropSet(t *testing.T) {
	f := newFaultSet([]string{"n2"})
	require.False(t, f.allow("n2"))
	require.True(t, f.allow("n3"))
	f.set([]string{"n3", "n1"})
	require.True(t, f.allow("n2"))
	require.False(t, f.allow("n3"))
	require.Equal(t, []string{"n1", "n3"}, f.list())
	f.set(nil)
	require.True(t, f.allow("n1"))
	require.Equal(t, []string{}, f.list())
}

func TestKVDefWireVersions(t *testing.T) {
	tests := []struct {
		name    string
		def     KVDef
		version uint32
		ok      bool
	}{
		{"default reads v1", KVDef{}, 1, true},
		{"default rejects v2", KVDef{}, 2, false},
		{"default rejects v0", KVDef{}, 0, false},
		{"v2 reads v1", KVDef{Wire: 2}, 1, true},
		{"v2 reads v2", KVDef{Wire: 2}, 2, true},
		{"v2 rejects v3", KVDef{Wire: 2}, 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, verr := tt.def.DecodeView([]byte(`{"a":"b"}`), tt.version)
			_, derr := tt.def.DecodeDelta([]byte(`{"k":"a","v":"b"}`), tt.version)
			for _, err := range []error{verr, derr} {
				if tt.ok {
					require.NoError(t, err)
				} else {
					require.True(t, errors.Is(err, dstate.ErrUnknownVersion), "got %v, want ErrUnknownVersion", err)
				}
			}
		})
	}
	require.Equal(t, uint32(1), KVDef{}.WireVersion())
	require.Equal(t, uint32(3), KVDef{Wire: 3}.WireVersion())
}
