package stix

import (
	"fmt"
	"time"
)

// ParseTimestamp parses a STIX timestamp. STIX 2.1 §2.16.1: the value MUST be
// RFC 3339 in the form YYYY-MM-DDTHH:mm:ss[.s+]Z, in UTC with the "Z"
// designator, and a decimal point MUST NOT appear without digits after it.
// Sub-second digits beyond nanoseconds are accepted and truncated.
func ParseTimestamp(s string) (time.Time, error) {
	if len(s) < 20 || s[len(s)-1] != 'Z' {
		return time.Time{}, fmt.Errorf("timestamp %q: must be YYYY-MM-DDTHH:mm:ss[.s+]Z in UTC (STIX 2.1 §2.16)", s)
	}
	for i := 0; i < 19; i++ {
		c := s[i]
		switch i {
		case 4, 7:
			if c != '-' {
				return time.Time{}, fmt.Errorf("timestamp %q: must be YYYY-MM-DDTHH:mm:ss[.s+]Z (STIX 2.1 §2.16)", s)
			}
		case 10:
			if c != 'T' {
				return time.Time{}, fmt.Errorf("timestamp %q: must use 'T' between date and time (STIX 2.1 §2.16)", s)
			}
		case 13, 16:
			if c != ':' {
				return time.Time{}, fmt.Errorf("timestamp %q: must be YYYY-MM-DDTHH:mm:ss[.s+]Z (STIX 2.1 §2.16)", s)
			}
		default:
			if c < '0' || c > '9' {
				return time.Time{}, fmt.Errorf("timestamp %q: must be YYYY-MM-DDTHH:mm:ss[.s+]Z (STIX 2.1 §2.16)", s)
			}
		}
	}
	frac := s[19 : len(s)-1]
	if frac != "" {
		if frac[0] != '.' || len(frac) == 1 {
			return time.Time{}, fmt.Errorf("timestamp %q: sub-second part must be '.' followed by digits (STIX 2.1 §2.16)", s)
		}
		for i := 1; i < len(frac); i++ {
			if frac[i] < '0' || frac[i] > '9' {
				return time.Time{}, fmt.Errorf("timestamp %q: sub-second part must be digits (STIX 2.1 §2.16)", s)
			}
		}
		if len(frac) > 10 { // '.' + 9 digits: nanoseconds is the finest Go keeps.
			s = s[:19] + frac[:10] + "Z"
		}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q: %v (STIX 2.1 §2.16)", s, err)
	}
	return t, nil
}

// SortKey renders t so that byte order equals time order: fixed width, UTC,
// nanoseconds. Stores use it to index and compare versions.
func SortKey(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000000Z")
}

// FormatMicro renders t as a TAXII 2.1 timestamp, which MUST have exactly
// microsecond precision (TAXII 2.1 §2).
func FormatMicro(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}
