package postgres_test

import (
	"testing"

	"github.com/mitra-cert/mitra/internal/store/storetest"
)

// The store's share of TAXII reads and ingest, without HTTP.

func BenchmarkQueryPages(b *testing.B) { storetest.BenchQueryPages(b, open) }

func BenchmarkAddObjects(b *testing.B) { storetest.BenchAddObjects(b, open) }
