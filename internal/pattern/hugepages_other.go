//go:build !linux

package pattern

import "unsafe"

// hugePages is a no-op where the kernel offers no transparent huge pages
// through madvise (see hugepages_linux.go).
func hugePages(p unsafe.Pointer, n uintptr) {}
