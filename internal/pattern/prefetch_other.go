//go:build !amd64 && !arm64

package pattern

import "unsafe"

// prefetch is a no-op where the package has no assembly for it (see
// prefetch_amd64.go): the lookups are as correct, only slower on large
// indexes.
func prefetch(unsafe.Pointer) {}
