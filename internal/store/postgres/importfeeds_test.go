package postgres_test

import (
	"testing"

	"github.com/mitra-cert/mitra/internal/store/storetest"
)

func TestImportFeeds(t *testing.T) { storetest.ImportFeeds(t, open(t)) }
