//go:build unix

package contenthash

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time this process has used. On a shared machine the
// wall-clock ns/op of a benchmark depends on the neighbours; CPU time per
// observation much less, so the benchmarks report both.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
