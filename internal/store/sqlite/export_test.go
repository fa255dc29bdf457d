package sqlite

// StartCheckpointer starts the store's background checkpointer on the
// database at dsn, for the benchmarks of package sqlite_test that measure
// SQLite under the store's checkpoint scheme; stop ends it.
func StartCheckpointer(dsn string) (stop func() error, err error) {
	c, err := startCheckpointer(dsn)
	if err != nil {
		return nil, err
	}
	return c.stop, nil
}

// Pragma returns a PRAGMA's value on the store's writer connection
// (reader false) or on one of its readers.
func Pragma(s *Store, name string, reader bool) (string, error) {
	db := s.db.w
	if reader {
		db = s.db.r
	}
	var v string
	err := db.QueryRow("PRAGMA " + name).Scan(&v)
	return v, err
}
