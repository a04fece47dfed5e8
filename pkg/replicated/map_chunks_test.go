package replicated_test

import (
	"fmt"
	"testing"

	"github.com/dstate-go/dstate/pkg/replicated"
)

// TestMapChunks: a view streams in chunks of about the size asked, each
// chunk is a snapshot of its entries, and the chunks decode to the view.
func TestMapChunks(t *testing.T) {
	for name, def := range kvDefs() {
		t.Run(name, func(t *testing.T) {
			var v replicated.MapValue[string, string]
			for i := range 5000 {
				v = v.Set(fmt.Sprintf("key-%05d", i), fmt.Sprint(i*7))
			}
			var chunks [][]byte
			if err := def.EncodeViewChunks(v, 4096, func(c []byte) error { chunks = append(chunks, c); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(chunks) < 10 {
				t.Fatalf("%d chunks for ~%d KiB at 4 KiB each", len(chunks), 5000*24/1024)
			}
			dec, err := def.NewViewDecoder(1)
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range chunks {
				if i > 0 && len(c) > 2*4096 {
					t.Fatalf("chunk %d is %d bytes, want about 4096", i, len(c))
				}
				if _, err := def.DecodeView(c, 1); err != nil {
					t.Fatalf("chunk %d is not a snapshot: %v", i, err)
				}
				if err := dec.Add(c); err != nil {
					t.Fatal(err)
				}
			}
			got, err := dec.Finish()
			if err != nil {
				t.Fatal(err)
			}
			if got.Len() != v.Len() {
				t.Fatalf("decoded %d entries, want %d", got.Len(), v.Len())
			}
			for k, x := range v.All() {
				if y, ok := got.Get(k); !ok || y != x {
					t.Fatalf("%s = %q, %v; want %q", k, y, ok, x)
				}
			}
			// An empty view is one chunk.
			chunks = nil
			_ = def.EncodeViewChunks(replicated.MapValue[string, string]{}, 4096, func(c []byte) error { chunks = append(chunks, c); return nil })
			if len(chunks) != 1 {
				t.Fatalf("empty view: %d chunks", len(chunks))
			}
			if _, err := def.NewViewDecoder(9); err == nil {
				t.Fatal("a decoder for an unknown wire version")
			}
		})
	}
}
