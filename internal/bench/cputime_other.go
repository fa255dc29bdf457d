//go:build !unix

package bench

import "time"

// CPUTime is not measured on this system: the CPU column stays empty.
func CPUTime() time.Duration { return 0 }
