// Package detect matches telemetry against the active STIX indicators of a
// Mitra store and records what matched as STIX 2.1 sightings (§5.2) with
// observed-data (§4.14) summarising the matching events.
//
// # Pipeline
//
// Sources (files, followed files and directories, standard input, a NATS
// JetStream durable consumer) cut their input into batches of lines, about
// 64 KiB each, converted once to a string so that every decoded value is a
// substring of it. Stateful framing (Zeek TSV headers, STIX objects that
// refer to earlier lines) happens in the source's goroutine; decoding and
// matching run on one worker per CPU. Decoded events are pattern.Observation
// values over pattern.SCO and network-traffic objects allocated from
// per-worker slabs that are never reused, because the Matcher may keep an
// observation for patterns spanning several observations.
//
// A worker counts the matches of its batch per indicator and time bucket
// of the event time (Config.Bucket, one minute by default), keeping a
// copy of a sample observation or two; STIX objects are only built when a
// bucket is written. Every Config.Flush (or sooner when Config.MaxPending
// is reached, which bounds memory whatever the match rate) the counts
// gathered are written in one sink transaction: the stored version of each
// bucket's sighting is read, and a new version is written with the counts
// added and first/last seen widened, with its observed-data summary. The
// sighting and observed-data ids are UUIDv5 of the organisation, the
// indicator and the bucket start, so late events, several inputs, restarts
// and several detectors of one organisation all update the same sighting.
//
// What is written is marked with the strictest of the telemetry's TLP
// (Config.TLP) and the matched indicator's (as the store applies it),
// with x_mitra_recipients naming the indicator's producer and recipients
// when AMBER+STRICT or RED. An organisation that asked for anonymity
// appears in none of the objects (access.AnonymousIdentity instead), and
// its ids derive from a key of its own.
//
// # Delivery
//
// A NATS message is acknowledged only once the counts of all its records
// are committed. Its stream position is committed in the same transaction
// (the cursor "detect/<org>/<stream>/<consumer>"), so a message delivered
// again after a crash, to the same or another detector of the consumer,
// is acknowledged without being counted: exactly once with a store sink
// (a TAXII sink has no transactions: at least once). Acknowledgement
// deadlines are extended while messages wait for a slow sink. Zeek TSV
// headers are kept in a JetStream key-value bucket for detectors that
// start after them; records that cannot be decoded go to a dead-letter
// subject with their reason.
//
// # Indicator set
//
// StoreIndicators loads the indicators of pattern_type "stix" that the
// detector's organisation may read (access.Decide), latest version, not
// revoked, with valid_from <= now < valid_until (wall clock), and keeps the
// Matcher current by polling each collection's change log (Config.Poll,
// one second by default) and rescanning everything now and then (grants
// and TLP defaults are not in the change log). Validity is checked again
// on every match, so an expired indicator never produces a sighting.
package detect
