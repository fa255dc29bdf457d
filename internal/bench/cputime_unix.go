//go:build unix

package bench

import (
	"syscall"
	"time"
)

// CPUTime is the CPU time this process (server, store and clients) has
// used. On a shared machine wall-clock rates depend on the neighbours; CPU
// time per object much less, so the table shows both.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
