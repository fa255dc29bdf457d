//go:build !race

package feeds_test

// lcSeeds is how many random sequences TestActiveSetMatchesSelect runs.
const lcSeeds = 3
