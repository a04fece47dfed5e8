package serfevents

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
)

// Gossip encryption.
//
// Every gossip packet and stream is encrypted (AES-GCM) with the primary
// key of the node's keyring and decrypted with whichever installed key fits,
// so a key can be rotated without a partition:
//
//  1. InstallKey(new): every member adds the key (still encrypting with the
//     old primary).
//  2. UseKey(new): every member makes it the primary.
//  3. RemoveKey(old): every member forgets the old key.
//
// Each step is a serf query to every member; it fails with a
// *KeyOperationError when a member reports an error or does not answer.

// GenerateKey returns a new random 32-byte (AES-256) key, base64-encoded.
// Keys of 16 and 24 bytes (AES-128, AES-192) are accepted too.
func GenerateKey() (string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("serfevents: generate key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(key), nil
}

// decodeKey decodes a base64 key and checks its length.
func decodeKey(key string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(key))
	if err != nil {
		return nil, fmt.Errorf("%w: not standard base64: %v", ErrBadKey, err)
	}
	if err := memberlist.ValidateKey(raw); err != nil {
		return nil, fmt.Errorf("%w: %d bytes, want 16, 24 or 32", ErrBadKey, len(raw))
	}
	return raw, nil
}

// ParseKeys reads gossip keys from the contents of a key file, in either
// of two formats:
//
//   - a JSON list of base64 strings, as serf writes its keyring file:
//     ["<primary>", "<other>"];
//   - one base64 key per line; blank lines and lines starting with '#' are
//     ignored.
//
// The first key is the primary. It returns the keys (trimmed, base64) or an
// error matching ErrKeyFile that names the bad entry; a file without keys is
// an error.
func ParseKeys(data []byte) ([]string, error) {
	var keys []string
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if err := json.Unmarshal(trimmed, &keys); err != nil {
			return nil, fmt.Errorf("%w: not a JSON list of strings: %v", ErrKeyFile, err)
		}
	} else {
		for line := range strings.Lines(string(data)) {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			keys = append(keys, line)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no keys", ErrKeyFile)
	}
	seen := map[string]bool{}
	out := make([]string, 0, len(keys))
	for i, k := range keys {
		k = strings.TrimSpace(k)
		if _, err := decodeKey(k); err != nil {
			return nil, fmt.Errorf("%w: key %d: %w", ErrKeyFile, i+1, err)
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out, nil
}

// LoadKeyFile reads the gossip keys of a key file (see ParseKeys). Errors
// name the file.
func LoadKeyFile(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeyFile, err)
	}
	keys, err := ParseKeys(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

// newKeyring builds a memberlist keyring; the first key is the primary.
func newKeyring(keys []string) (*memberlist.Keyring, error) {
	raw := make([][]byte, len(keys))
	for i, k := range keys {
		b, err := decodeKey(k)
		if err != nil {
			return nil, err
		}
		raw[i] = b
	}
	kr, err := memberlist.NewKeyring(raw, raw[0])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	return kr, nil
}

// KeyResult is what the members answered to a keyring operation.
type KeyResult struct {
	// Members is the number of members asked.
	Members int
	// Responses and Errors count the answers and the failed ones.
	Responses, Errors int
	// Messages holds each member's error message, by node name.
	Messages map[string]string
	// Keys maps each base64 key to the number of members holding it
	// (ListKeys only).
	Keys map[string]int
	// PrimaryKeys maps each base64 primary key to the number of members
	// using it (ListKeys only).
	PrimaryKeys map[string]int
}

// InstallKey adds key (base64) to every member's keyring.
func (m *Membership) InstallKey(ctx context.Context, key string) (KeyResult, error) {
	return m.keyOp(ctx, "install", key, func(km *serf.KeyManager) (*serf.KeyResponse, error) { return km.InstallKey(key) })
}

// UseKey makes key (base64, already installed) the primary key of every
// member.
func (m *Membership) UseKey(ctx context.Context, key string) (KeyResult, error) {
	return m.keyOp(ctx, "use", key, func(km *serf.KeyManager) (*serf.KeyResponse, error) { return km.UseKey(key) })
}

// RemoveKey removes key (base64) from every member's keyring; a member
// refuses to remove its primary key.
func (m *Membership) RemoveKey(ctx context.Context, key string) (KeyResult, error) {
	return m.keyOp(ctx, "remove", key, func(km *serf.KeyManager) (*serf.KeyResponse, error) { return km.RemoveKey(key) })
}

// ListKeys asks every member for its keys.
func (m *Membership) ListKeys(ctx context.Context) (KeyResult, error) {
	return m.keyOp(ctx, "list", "", func(km *serf.KeyManager) (*serf.KeyResponse, error) { return km.ListKeys() })
}

// LocalKeys returns this node's keys (base64), the primary first; nil when
// encryption is off.
func (m *Membership) LocalKeys() []string {
	if m.keyring == nil {
		return nil
	}
	raw := m.keyring.GetKeys()
	out := make([]string, len(raw))
	for i, k := range raw {
		out[i] = base64.StdEncoding.EncodeToString(k)
	}
	return out
}

// keyOp runs one KeyManager call. The call is bounded by serf's query
// timeout; when ctx ends first, keyOp returns ctx's error and the call
// finishes in the background.
func (m *Membership) keyOp(ctx context.Context, op, key string, call func(*serf.KeyManager) (*serf.KeyResponse, error)) (KeyResult, error) {
	if m.keyring == nil {
		return KeyResult{}, ErrNoEncryption
	}
	if op != "list" {
		if _, err := decodeKey(key); err != nil {
			return KeyResult{}, err
		}
	}
	if err := m.enter(); err != nil {
		return KeyResult{}, err
	}
	type answer struct {
		resp *serf.KeyResponse
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		defer m.wg.Done()
		resp, err := call(m.serf.KeyManager())
		done <- answer{resp, err}
	}()
	select {
	case a := <-done:
		if op != "list" {
			m.files.check() // serf has rewritten the key file
		}
		res := KeyResult{Messages: map[string]string{}}
		if a.resp != nil {
			res = KeyResult{Members: a.resp.NumNodes, Responses: a.resp.NumResp, Errors: a.resp.NumErr,
				Messages: a.resp.Messages, Keys: a.resp.Keys, PrimaryKeys: a.resp.PrimaryKeys}
		}
		if a.err != nil {
			m.log.Warn("keyring operation failed", "op", op, "err", a.err)
			return res, &KeyOperationError{Op: op, Result: res, Err: a.err}
		}
		m.log.Info("keyring operation done", "op", op, "members", res.Members)
		return res, nil
	case <-ctx.Done():
		return KeyResult{}, fmt.Errorf("serfevents: keyring %s: %w", op, ctx.Err())
	}
}
