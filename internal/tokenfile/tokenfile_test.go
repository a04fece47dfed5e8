package tokenfile_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/internal/tokenfile"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	tok, err := tokenfile.Read(write("ok", "  s3cret\n"))
	require.NoError(t, err)
	require.Equal(t, "s3cret", tok)
	for name, tc := range map[string]struct{ path, want string }{
		"missing":   {filepath.Join(dir, "nope"), "cannot read the token: no such file or directory"},
		"directory": {dir, "cannot read the token: is a directory"},
		"empty":     {write("empty", " \n"), "the file is empty"},
		"two lines": {write("two", "a\nb\n"), "more than one line"},
		"huge":      {write("huge", strings.Repeat("x", tokenfile.MaxSize+1)), "larger than 64 KiB"},
	} {
		_, err := tokenfile.Read(tc.path)
		require.ErrorContains(t, err, tc.want, name)
		require.NotContains(t, err.Error(), tc.path, "%s: the caller names the file", name)
	}
}
