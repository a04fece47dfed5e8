package e2e

import "syscall"

// sysProcAttr makes an agent die with the test binary (even when the test
// binary is killed by -timeout), so no process outlives the suite.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
