//go:build race

package feeds_test

// Under the race detector TestActiveSetMatchesSelect runs one random
// sequence (about 10 s here); test.sh also runs the three without it.
const lcSeeds = 1
