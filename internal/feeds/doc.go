// Package feeds brings intelligence that CERTs already have into Mitra and
// takes it out to what defenders already run (issue 16).
//
// The import side reads STIX 2.1 bundles, STIX 2.0 bundles (upgraded to
// 2.1), MISP events and feeds, and CSV or plain-text indicator lists,
// converts them to STIX 2.1 and stores them through the same checks as a
// TAXII POST (taxii.Server.Check, as the importing principal), so that
// validation, ownership and markings apply unchanged. Converted content
// gets deterministic ids and stable timestamps: importing the same source
// twice stores nothing the second time. Values on a warning list never
// become active indicators: the object is kept and flagged inactive, with
// the reason, in the same transaction.
package feeds
