//go:build race

package feeds

// Under the race detector (10 times slower here) the parser tests export
// 10,000 indicators; test.sh also runs them without it at 100,000.
const parserN = 10_000
