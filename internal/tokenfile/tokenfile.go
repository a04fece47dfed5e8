package tokenfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// MaxSize bounds what is read of a token file.
const MaxSize = 64 << 10

// Read returns the token in path. Its errors say what is wrong without
// naming the file, so that the caller can name it with the setting it came
// from.
func Read(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read the token: %w", unwrapPath(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return "", fmt.Errorf("cannot read the token: %w", unwrapPath(err))
	}
	if len(data) > MaxSize {
		return "", fmt.Errorf("larger than %d KiB, not a token file", MaxSize>>10)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", errors.New("the file is empty (want the agent's admin token)")
	}
	for _, r := range token {
		if r < 0x20 || r == 0x7f {
			return "", errors.New("holds more than one line or a control character; want the token alone")
		}
	}
	return token, nil
}

// unwrapPath drops the *fs.PathError around err: the caller names the file.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
