package pattern

import "unsafe"

// prefetch asks the CPU to bring the cache line at addr into its caches
// without waiting for it: the lookup passes of a large index call it for
// the lines the next pass reads, so that those misses are in flight
// while other work runs instead of stalling the pass that needs them. It
// is a hint: it never faults, whatever addr is, and changes nothing a
// program can observe but time. Go has no prefetch of its own outside
// the runtime, hence the assembly.
//
//go:noescape
func prefetch(addr unsafe.Pointer)
