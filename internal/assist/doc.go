// Package assist carries cross-border assistance between national CERTs
// and keeps the directory of their points of contact (issue 15).
//
// An assistance request and every step after it (acknowledge, answer, ask
// for more, accept, decline, escalate) is a STIX 2.1 note (§4.11) whose
// object_refs name what it concerns, with Mitra's assistance extension (an
// extension-definition published with its JSON schema, ExtensionDefinition)
// carrying the fields a machine needs. Other TAXII peers read them as plain
// notes. The history of a request is the set of its notes, each with the
// author's timestamp (created) and the local one (date_added), so both
// servers that hold the same notes show the same history.
//
// Notes travel to the other server through a durable delivery queue in the
// store: a delivery names the contact (resolved in the directory at each
// attempt) or the peer, and it is retried with backoff until the other
// server took it, so a request to an unknown or unreachable contact is kept,
// never lost. The requester's server watches each request's clock and,
// when it is overdue, escalates to the next contact of the organisation in
// the directory.
//
// A point of contact is a STIX identity (§4.5) with Mitra's point-of-contact
// extension: country, organisation, diplomatic or technical, roles,
// channels and working hours. Directory entries are ordinary objects of a
// collection, under the same access policy, and are shared with peers by
// the collection's federation links.
package assist
