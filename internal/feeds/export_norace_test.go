//go:build !race

package feeds

// parserN is how many indicators the parser tests export.
const parserN = 100_000
