package taxii_test

import (
	"os"
	"testing"

	"github.com/mitra-cert/mitra/internal/store/testbackend"
)

// current is the store backend of the run in progress.
var current testbackend.Backend

// TestMain runs every test and benchmark of the package once per backend
// named in MITRA_TEST_BACKENDS (see testbackend).
func TestMain(m *testing.M) {
	os.Exit(testbackend.Main(m, "the TAXII tests", func(b testbackend.Backend) { current = b }))
}
