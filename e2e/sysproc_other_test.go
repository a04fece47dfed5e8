//go:build !linux

package e2e

import (
	"errors"
	"os"
	"syscall"
)

func sysProcAttr() *syscall.SysProcAttr { return nil }

// canPause reports whether pauseProcess works on this system.
const canPause = false

var errNoPause = errors.New("e2e: pausing a process (SIGSTOP) is only implemented on Linux")

func pauseProcess(*os.Process) error  { return errNoPause }
func resumeProcess(*os.Process) error { return errNoPause }
