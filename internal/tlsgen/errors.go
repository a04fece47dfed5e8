package tlsgen

import (
	"errors"
	"fmt"
)

// Sentinel errors. A *FileError wraps them (or the I/O error, which
// matches fs.ErrNotExist, fs.ErrExist or fs.ErrPermission as usual), so
// callers test with errors.Is.
var (
	// ErrBadNodeID: a node ID cannot name a certificate (see
	// [ValidateNodeID]).
	ErrBadNodeID = errors.New("tlsgen: bad node ID")
	// ErrBadName: an extra DNS name is not a valid host name.
	ErrBadName = errors.New("tlsgen: bad DNS name")
	// ErrValidity: a validity is negative, or a node certificate would
	// outlive the CA that signs it.
	ErrValidity = errors.New("tlsgen: bad validity")
	// ErrBadPEM: a file holds no PEM block of the expected type, or its
	// contents do not parse.
	ErrBadPEM = errors.New("tlsgen: bad PEM file")
	// ErrNotCA: a certificate loaded as the CA is not a CA certificate
	// (not IsCA, or not allowed to sign certificates), or it has expired.
	ErrNotCA = errors.New("tlsgen: not a usable CA certificate")
	// ErrKeyMismatch: the CA key does not belong to the CA certificate.
	ErrKeyMismatch = errors.New("tlsgen: key does not match the certificate")
)

// FileError reports what was wrong with one file.
type FileError struct {
	// What names the file's role: "CA certificate", "CA key",
	// "certificate" or "key".
	What string
	// Path is the file.
	Path string
	// Reason says what was wrong, when Err alone does not.
	Reason string
	// Err is the cause: one of the sentinels above, or the I/O error.
	Err error
}

// Error implements error.
func (e *FileError) Error() string {
	reason := e.Reason
	if reason == "" && e.Err != nil {
		reason = e.Err.Error()
	}
	return fmt.Sprintf("tlsgen: %s %s: %s", e.What, e.Path, reason)
}

// Unwrap returns the cause.
func (e *FileError) Unwrap() error { return e.Err }
