package e2e

import (
	"os"
	"syscall"
)

// sysProcAttr makes an agent die with the test binary (even when the test
// binary is killed by -timeout), so no process outlives the suite.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// canPause reports whether pauseProcess works on this system.
const canPause = true

// pauseProcess stops p (SIGSTOP): it keeps its sockets and state but runs
// nothing, so peers see it silent, and when it resumes it carries on
// from where it stood (a Raft leader still believing it leads).
func pauseProcess(p *os.Process) error { return p.Signal(syscall.SIGSTOP) }

// resumeProcess continues a process stopped by pauseProcess (SIGCONT).
func resumeProcess(p *os.Process) error { return p.Signal(syscall.SIGCONT) }
