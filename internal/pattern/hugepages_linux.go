//go:build linux

package pattern

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugePageSize is the size of a transparent huge page with 4 KiB base
// pages (amd64, and arm64 as most distributions configure it).
const hugePageSize = 2 << 20

// hugePagesMin is the smallest array hugePages acts on: a smaller one
// spans under 64 pages, which the TLB holds as they are.
const hugePagesMin = 256 << 10

// hugePages asks the kernel to back the memory of a large array that is
// read at random, n bytes at p, with huge pages. The arrays in front of
// a large index (the Bloom filter, the prefix filter's bitmaps, the
// tables' slots) are read at random pages a few times per observation;
// on 4 KiB pages nearly every read needs a page walk, and a prefetch
// waits for its walk, where a few huge pages stay in the TLB. The Go
// heap is in 64 MiB arenas, so the 2 MiB regions holding the array are
// heap memory: the advice moves no data a program can observe, and
// every error is ignored (THP may be off, and MADV_COLLAPSE, which
// turns the pages already touched into huge ones, needs Linux 6.1).
// Regions are advised one by one so that one refused (a part of an
// arena not mapped yet) does not stop the others.
func hugePages(p unsafe.Pointer, n uintptr) {
	if n < hugePagesMin {
		return
	}
	lo := uintptr(p) &^ (hugePageSize - 1)
	for r := lo; r < uintptr(p)+n; r += hugePageSize {
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, r, hugePageSize, unix.MADV_HUGEPAGE)
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, r, hugePageSize, unix.MADV_COLLAPSE)
	}
}
