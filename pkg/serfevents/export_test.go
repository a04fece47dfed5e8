package serfevents

import "time"

// SetFileCheckInterval sets how often Memberships started afterwards check
// their files' modes, and returns a function restoring the old interval.
func SetFileCheckInterval(d time.Duration) (restore func()) {
	old := fileCheckInterval
	fileCheckInterval = d
	return func() { fileCheckInterval = old }
}
