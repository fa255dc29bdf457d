package search

// SetIDsPage sets the page size MatchingIDs reads with, for the tests of
// its paging; it returns a function that restores it.
func SetIDsPage(n int) (restore func()) {
	old := idsPage
	idsPage = n
	return func() { idsPage = old }
}
