package node

import "errors"

// ErrClosed is returned by calls on a closed node.
var ErrClosed = errors.New("node: closed")
