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
// Matches are aggregated per indicator per time bucket of the event time
// (Config.Bucket, one minute by default). Every Config.Flush the aggregates
// that changed are written to the sink as a new version of one sighting and
// one observed-data per aggregate (same id, later modified, cumulative
// count), so a noisy indicator yields one sighting per bucket, kept up to
// date, and events are held unacknowledged for a few seconds at most.
//
// # Delivery
//
// A batch is acknowledged (for NATS: its messages are acked) only after
// all its events are matched and every sighting they contributed to is
// stored. A detector killed before that leaves the messages unacked, and
// JetStream delivers them again, to it or to another detector of the same
// durable consumer: at-least-once. A redelivered event may be counted
// twice if the detector died between storing and acking.
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
