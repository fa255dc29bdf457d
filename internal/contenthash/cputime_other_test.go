//go:build !unix

package contenthash

import "time"

// cpuTime is not measured on this platform; the benchmarks then report
// wall-clock figures only.
func cpuTime() time.Duration { return 0 }
