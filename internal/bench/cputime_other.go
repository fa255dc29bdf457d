//go:build !unix

package bench

import "time"

// cpuTime is not measured on this system: the CPU column stays empty.
func cpuTime() time.Duration { return 0 }
