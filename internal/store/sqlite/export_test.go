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
