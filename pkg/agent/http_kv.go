package agent

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"unicode"
	"unicode/utf8"
)

// Default limits on the keys and values the admin API writes to the kv
// states (max_key_bytes, max_value_bytes).
const (
	// DefaultMaxKeyBytes bounds a key's length in bytes by default.
	DefaultMaxKeyBytes = 512
	// DefaultMaxValueBytes bounds a value's length in bytes by default.
	DefaultMaxValueBytes = 512 << 10
)

// maxKeyBytes is max_key_bytes or its default.
func (s *apiServer) maxKeyBytes() int {
	if s.cfg.MaxKeyBytes > 0 {
		return s.cfg.MaxKeyBytes
	}
	return DefaultMaxKeyBytes
}

// maxValueBytes is max_value_bytes or its default.
func (s *apiServer) maxValueBytes() int {
	if s.cfg.MaxValueBytes > 0 {
		return s.cfg.MaxValueBytes
	}
	return DefaultMaxValueBytes
}

// checkKey refuses a key the kv states do not hold: empty, over
// max_key_bytes, not UTF-8, or with a control character (NUL, a newline,
// DEL...).
func (s *apiServer) checkKey(key string) error {
	switch {
	case key == "":
		return badRequest{errors.New("key: is empty")}
	case len(key) > s.maxKeyBytes():
		return badRequest{fmt.Errorf("key: %d bytes is over max_key_bytes (%d)", len(key), s.maxKeyBytes())}
	case !utf8.ValidString(key):
		return badRequest{errors.New("key: is not UTF-8 text")}
	}
	for i, r := range key {
		if unicode.IsControl(r) {
			return badRequest{fmt.Errorf("key: control character %U at byte %d (keys are printable text)", r, i)}
		}
	}
	return nil
}

// readValue reads a PUT /v1/kv/{key} body: at most max_value_bytes, and
// at most max_request_bytes.
func (s *apiServer) readValue(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	limit, name := int64(s.maxValueBytes()), "max_value_bytes"
	if req := s.maxRequestBytes(); req < limit {
		limit, name = req, "max_request_bytes"
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		if name == "max_request_bytes" {
			s.countOversizedRequest(r)
		}
		return nil, tooLarge{fmt.Errorf("value: is larger than %s (%d bytes)", name, limit)}
	case err != nil:
		return nil, badRequest{fmt.Errorf("value: reading the request body: %w", err)}
	}
	return body, nil
}
