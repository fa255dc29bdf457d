// Package pattern implements STIX 2.1 Patterning (STIX 2.1 with Errata 01,
// section 9): a hand-written parser producing a typed AST, a reference
// evaluator that matches one pattern against a set of observations, and a
// streaming Matcher that matches many patterns against a stream. It
// depends on nothing else in Mitra.
//
// # Parsing
//
// Parse (and Check) accept the grammar of the OASIS reference grammar
// (STIXPattern.g4) with the rules of §9 applied on top. Errors are
// *SyntaxError values whose text starts with "position N: " (N counts
// characters from 0) and says what was expected. Beyond syntax, Parse
// rejects what §9 forbids: a '+' sign on numbers (§9.2), integers outside
// the STIX range [-(2^53)+1, (2^53)-1] (§2.10, which §9.2 refers to; int64
// is not the range), h'..' constants with an odd number of digits or
// anything but 0-9 and lower-case a-f (§9.2, §2.8), invalid base64 in
// b'..' (line feeds are ignored, §9.2; nothing else, not even a carriage
// return, as RFC 4648 §3.3 asks),
// impossible timestamps, unquoted property names containing '-' (§9.7),
// IN lists mixing types (§9.6.1), ISSUBSET/ISSUPERSET constants that are
// not IP addresses or CIDR blocks, a qualifier given twice to one
// expression (§9.5.1), non-positive WITHIN or REPEATS values, and AND
// between comparisons whose object types can never be one object (§9.5).
// Keywords are case-sensitive as in the reference grammar (AND, not and;
// true, not TRUE). WITHIN takes SECONDS only: the "5 MINUTES" in the
// prose of §9.5 is not part of the qualifier table.
//
// # Semantics
//
// The reference semantics (Evaluate) follow §9 and, where §9 is silent,
// the OASIS reference matcher (cti-pattern-matcher):
//
//   - An observed-data with number_observed N counts as N observations
//     over [first_observed, last_observed]; each may be bound once.
//   - An observation's time may be anywhere in its interval, so temporal
//     tests take the most favourable choice: FOLLOWEDBY needs
//     max(first_observed of the left) <= min(last_observed of the right);
//     WITHIN d needs max(first_observed) - min(last_observed) < d (strict:
//     "MUST NOT be equal to or later than", §9.5.1); START x STOP y needs
//     last_observed >= x and first_observed < y for every bound
//     observation.
//   - A path that resolves to nothing makes its comparison false whatever
//     the operator (§9.6), NOT included. [*] is true if any element passes
//     (§9.7.2); NOT, allowed before every operator, negates the whole
//     comparison expression (§9.6.1), so a[*] NOT = 'x' is true when no
//     element is 'x' (the OASIS matcher negates per element instead).
//     Incompatible types are false except for != (§9.6.1).
//   - Strings compare by code point without normalisation (§9.6.2); LIKE
//     and MATCHES see NFC-normalised text (§9.6.1). Binary (_bin) and hex
//     (_hex) properties are decoded and compared as octets (§9.6.3,
//     §9.6.4); a string constant against them is converted when all its
//     code points are below U+0100. Integers and floats compare exactly.
//     Timestamps compare as instants.
//   - The value of an ipv4-addr or ipv6-addr object compares by address
//     with =, != and IN: '198.51.100.1/32' equals "198.51.100.1" (§9.6.4
//     native format). ISSUBSET and ISSUPERSET work on CIDR blocks; equal
//     blocks are both (§9.6.1).
//   - _ref and _refs properties followed by more path are dereferenced
//     within the same observation only (§9.7.4), at most 32 deep.
//
// The binding search is exact (depth-first with backtracking, REPEATS
// bindings taken in canonical order so that permutations are not
// re-tried) but exponential in the worst case, so it runs on a step
// budget and returns ErrBudget when it runs out.
//
// # Regular expressions
//
// MATCHES (§9.6.1) asks for PCRE with the search function and DOTALL. Go's
// regexp (RE2) is used, with DOTALL set, and it guarantees linear-time
// matching. The subset that works as in PCRE: literals and escapes
// (\t \n \r \f \a \e \xHH \x{H..} \0oo), classes [..] including [^..],
// a leading ']' and POSIX [:alpha:], \d \D \s \S \w \W \b \B \A \z, \p{..}
// and \P{..}, \Q..\E, ., ^, $, groups (..), (?:..), (?P<n>..), (?<n>..),
// alternation, greedy and lazy quantifiers * + ? {n} {n,} {n,m} (n, m up
// to 1000), and the inline flags i, m, s and U. \h, \H, \v and \V are
// rewritten to PCRE's classes (in RE2 \v is only the vertical tab).
// Rejected at parse time with an error naming the construct:
// backreferences (\1..\9, \g, \k, (?P=n)), lookahead and lookbehind
// ((?=, (?!, (?<=, (?<!), atomic groups (?>, possessive quantifiers (*+
// ++ ?+ {n}+), conditionals (?(, recursion and subroutine calls ((?R),
// (?1), (?&n), (?P>n)), branch reset (?|, comments (?#, callouts (?C,
// backtracking verbs (*..), the x flag, and the escapes \G \K \R \X \C
// \N \Z \c \o. The anchors mean what they mean in PCRE without MULTILINE:
// ^ matches at the start only, $ at the end and before a newline that
// ends the subject (RE2's $ does not; a $ that ends the expression is
// rewritten to \n?\z). Where RE2 cannot reproduce PCRE's anchors the
// expression is rejected: a $ (without m) that more of the expression
// follows, and a ^ under the m flag followed by a part that can match
// nothing (PCRE's (?m)^ does not match after a final newline, RE2's
// does). Binary properties are
// matched octet by octet (each octet is presented as the code point of
// the same value), so '\\xd4' matches the byte 0xd4 (§9.6.1: no UNICODE
// flag for binary).
//
// # The Matcher
//
// A Matcher holds any number of indicators and matches each observation
// against all of them. Per-observation cost does not grow with the
// number of indicators for the common comparisons, which are indexed by
// (object type, object path, value):
//
//   - = and IN (string, number, boolean, and IP address constants) go
//     through a hash index (64 open-addressing tables with 64-bit
//     fingerprints in the slots), with a blocked Bloom filter in front so
//     that the usual miss costs one cache line;
//   - ISSUBSET / ISSUPERSET go through IPv4/IPv6 prefix tries
//     (github.com/gaissmai/bart): all constants containing, or contained
//     in, the observed address or block are found in one walk; for a
//     single address, once a trie holds 8192 blocks, an occupancy bitmap
//     of the IPv4 space (about 16 cells per block, at most 2 MiB) and then
//     a blocked Bloom filter over (masked address, length) first rule out
//     most misses, and the address is then looked up, at the lengths that
//     filter gives, in a second hash index that files every ISSUBSET
//     constant by (masked address, length), instead of walking the trie;
//   - LIKE goes through an Aho-Corasick automaton over the longest literal
//     run of each constant, then the full LIKE test.
//
// Each observation expression ([...]) of an indicator files a set of
// anchors in these indexes that covers it: for OR all operands, for AND the
// cheapest operand. A hit makes it a candidate, evaluated in full on the
// object that produced the hit, unless the anchors are exact (an OR of
// indexed comparisons), when the hit is the match. Observation expressions
// with nothing indexable (only NOT, !=, <, MATCHES, EXISTS...) are
// evaluated for every object of their type. Simple one-expression
// indicators keep no AST, only their source, which keeps a million
// indicators near 300 bytes each.
//
// MatchBatch matches a slice of observations at once, as hash joins do:
// for each chunk of 64 it reads every indexed value and hashes every key
// first, then tests all the Bloom-filter words, then searches the hash
// tables, then compares the keys found, with the prefix filters, the
// block index and the tries in between, each pass made of loads that do
// not depend on each other so that the CPU overlaps their cache misses,
// and only then verifies and reports the observations in order. Once the
// index has outgrown the core's caches each pass also prefetches what
// the next one reads (the Bloom-filter word and the bitmap word as soon
// as a value is read, then table slot, entry, key and record), so those
// misses run during other work. The arrays read at random in front of a
// large index (a deep Bloom filter, the prefix filter's bitmaps, the
// tables' slots) ask for transparent huge pages on Linux: on 4 KiB pages
// nearly each of those reads, and each prefetch, waits for a page walk.
// The prefix filter keeps blocks up to /16 in a bitmap of their own, so an
// address inside a broad block is tested at the short lengths only. An
// indicator's record carries the entry of its first key, so a hit reads
// one allocation for both. Match and MatchAppend are MatchBatch of one
// observation.
//
// Patterns that one observation decides (an OR of observation expressions,
// with START/STOP or WITHIN at most) report at once. Patterns spanning
// observations (AND, FOLLOWEDBY, REPEATS) keep per-pattern state: the
// recent observations that matched one of their observation expressions.
// Each new one triggers the same binding search Evaluate uses, over that
// state, unless some observation expression the pattern needs has no
// observation yet. The state is bounded. When a WITHIN encloses the whole
// pattern, observations whose window has closed (last_observed at least
// the WITHIN duration before the newest first_observed) are evicted: from
// the front of the pattern's list on its next observation, and from all
// patterns by a sweep every 16384 observations (Matcher.Sweep, also
// callable directly). In any case at most MatcherOptions.MaxEvents are
// kept, oldest dropped first, and a match consumes the state. Streams are
// assumed to arrive roughly in time order; on in-order streams the Matcher
// agrees with Evaluate (tested on generated and table corpora).
//
// Concurrency: Match never waits on writers. The hash index is read
// without locks: entries are immutable and replaced whole, a new slot's
// entry is published before its fingerprint, a removed key leaves a
// tombstone, and a table grows by publishing a copy; the tries, the LIKE
// automata and the per-type
// lists are copy-on-write snapshots swapped atomically (tries with bart's
// persistent insert, or clone-and-insert for big batches; automata are
// rebuilt once the pending additions pass an eighth of their size).
// Writers (Add, AddAll, Remove) are serialised among themselves. Remove
// flags the indicator before unfiling it, so a Match call that starts
// after Remove returns never reports it.
//
// # Observations
//
// An Observation is one observed-data: its times, number_observed and
// SCOs as Object values. ObservationsFromJSON builds them from STIX JSON
// (object_refs with the SCOs alongside, or the deprecated objects
// dictionary). Detectors should build them directly with NewObservation
// and *SCO objects: SCO carries the type, the common "value" property and
// file hashes in plain fields, and implements StringPropObject, so the
// Matcher reads strings without boxing them; matching such an observation
// allocates nothing.
package pattern
