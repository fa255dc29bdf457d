// Package stix holds Mitra's STIX 2.1 object model: timestamps, identifiers,
// the light-weight header every stored object needs, and the validator that
// checks objects against the OASIS STIX 2.1 specification (with Errata 01).
//
// Objects are kept as the bytes that were received; this package reads from
// them what the rest of Mitra needs and never asks callers to re-serialise.
// It depends on the standard library (plus a UUID library) and on nothing else
// of Mitra's.
package stix
