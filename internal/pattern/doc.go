// Package pattern implements STIX 2.1 Patterning (STIX 2.1 with Errata 01,
// section 9): a hand-written parser producing a typed AST, a reference
// evaluator over sets of observations, and a streaming Matcher for many
// patterns at once.
package pattern
