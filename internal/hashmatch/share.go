// Package hashmatch shares content hashes (PDQ, TLSH, MD5, SHA-256) as STIX
// indicators and matches images, files and hashes against the shared ones,
// only among the indicators the caller may read (access.Decide).
//
// A shared hash is a STIX file observable (§6.7) whose hashes dictionary
// carries "PDQ" and "TLSH" as hash algorithm names (§2.7 allows names
// outside hash-algorithm-ov), with an indicator (§4.7) whose pattern
// compares file:hashes.PDQ (and the others) with them. Only hashes leave a
// machine: images are hashed in memory and dropped.
package hashmatch

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/contenthash"
	"github.com/mitra-cert/mitra/internal/stix"
)

// ErrInvalid marks bad input (HTTP 400).
var ErrInvalid = errors.New("invalid")

// Labels is the vocabulary of content labels (after the GIFCT hash-sharing
// taxonomy): a shared hash carries one or more of them in the indicator's
// labels, so that partners can filter.
var Labels = []string{
	"propaganda",        // glorification, branding, official group media
	"recruitment",       // calls to join or support a group
	"instruction",       // manuals: weapons, explosives, attack planning
	"attack-footage",    // content produced by perpetrators during an attack
	"threat",            // credible threats of violence
	"glorification",     // glorifying an attack or its perpetrators
	"manifesto",         // perpetrator manifestos
	"violent-extremist", // other violent extremist content
	"terrorist-content", // other terrorist content
}

// ValidLabel reports whether l is in the vocabulary.
func ValidLabel(l string) bool { return slices.Contains(Labels, l) }

// Hashes are the content hashes of one file. Empty fields are absent.
type Hashes struct {
	PDQ        string `json:"pdq,omitempty"`
	PDQQuality *int   `json:"pdq_quality,omitempty"`
	TLSH       string `json:"tlsh,omitempty"`
	MD5        string `json:"md5,omitempty"`
	SHA256     string `json:"sha256,omitempty"`
}

// FromFile takes the hashes of a hashed file.
func FromFile(fh contenthash.FileHashes) Hashes {
	h := Hashes{TLSH: fh.TLSH, MD5: fh.MD5, SHA256: fh.SHA256}
	if fh.Image != nil {
		q := fh.Image.Quality
		h.PDQ, h.PDQQuality = fh.Image.PDQ.String(), &q
	}
	return h
}

// Normalise lowercases and checks each hash.
func (h *Hashes) Normalise() error {
	h.PDQ, h.TLSH = strings.ToLower(strings.TrimSpace(h.PDQ)), strings.ToUpper(strings.TrimSpace(h.TLSH))
	h.MD5, h.SHA256 = strings.ToLower(strings.TrimSpace(h.MD5)), strings.ToLower(strings.TrimSpace(h.SHA256))
	if h.PDQ != "" {
		if _, err := contenthash.ParsePDQ(h.PDQ); err != nil {
			return fmt.Errorf("pdq: %v: %w", err, ErrInvalid)
		}
	}
	if h.TLSH != "" {
		if _, err := contenthash.ParseTLSH(h.TLSH); err != nil {
			return fmt.Errorf("tlsh: %v: %w", err, ErrInvalid)
		}
	}
	if h.MD5 != "" && !hexRE(32).MatchString(h.MD5) {
		return fmt.Errorf("md5: want 32 hexadecimal digits: %w", ErrInvalid)
	}
	if h.SHA256 != "" && !hexRE(64).MatchString(h.SHA256) {
		return fmt.Errorf("sha256: want 64 hexadecimal digits: %w", ErrInvalid)
	}
	if h.PDQ == "" && h.TLSH == "" && h.MD5 == "" && h.SHA256 == "" {
		return fmt.Errorf("no hash given: %w", ErrInvalid)
	}
	return nil
}

func hexRE(n int) *regexp.Regexp { return regexp.MustCompile(fmt.Sprintf(`^[0-9a-f]{%d}$`, n)) }

// Share is what to share about one file.
type Share struct {
	Hashes Hashes
	// Labels from the vocabulary (at least one).
	Labels []string
	// TLP level (access.ParseTLP spelling); empty leaves the collection's
	// default.
	TLP string
	// Recipients are organisations (identity ids) an AMBER+STRICT or RED
	// hash is released to, besides its submitter (x_mitra_recipients).
	Recipients []string
	// CreatedBy is the contributor's identity (empty: left to the server,
	// which records the submitter anyway).
	CreatedBy string
	Name      string
}

// tlp20 are the TLP 2.0 marking definitions, by level.
var tlp20 = map[access.TLP]string{
	access.TLPClear:       "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
	access.TLPGreen:       "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
	access.TLPAmber:       "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
	access.TLPAmberStrict: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
	access.TLPRed:         "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}

// Objects turns a share into the STIX objects to POST: a file observable
// and an indicator whose pattern matches it. The indicator's id is second.
func (s Share) Objects(now time.Time) ([]json.RawMessage, error) {
	h := s.Hashes
	if err := h.Normalise(); err != nil {
		return nil, err
	}
	if len(s.Labels) == 0 {
		return nil, fmt.Errorf("give at least one label (%s): %w", strings.Join(Labels, ", "), ErrInvalid)
	}
	for _, l := range s.Labels {
		if !ValidLabel(l) {
			return nil, fmt.Errorf("label %q is not in the vocabulary (%s): %w", l, strings.Join(Labels, ", "), ErrInvalid)
		}
	}
	var markings []string
	if s.TLP != "" {
		level, err := access.ParseTLP(s.TLP)
		if err != nil {
			return nil, fmt.Errorf("tlp: %v: %w", err, ErrInvalid)
		}
		id, ok := tlp20[level]
		if !ok {
			return nil, fmt.Errorf("tlp %q: %w", s.TLP, ErrInvalid)
		}
		markings = []string{id}
	}
	if len(s.Recipients) > 0 && len(markings) == 0 {
		return nil, fmt.Errorf("recipients need --tlp amber+strict or red: %w", ErrInvalid)
	}
	for _, r := range s.Recipients {
		if !strings.HasPrefix(r, "identity--") {
			return nil, fmt.Errorf("recipient %q: want an organisation identity id (identity--UUID): %w", r, ErrInvalid)
		}
	}
	hashes := map[string]any{}
	var terms []string
	add := func(key, quoted, v string) {
		if v != "" {
			hashes[key] = v
			terms = append(terms, "file:hashes."+quoted+" = '"+v+"'")
		}
	}
	add("SHA-256", "'SHA-256'", h.SHA256)
	add("MD5", "MD5", h.MD5)
	add("PDQ", "PDQ", h.PDQ)
	add("TLSH", "TLSH", h.TLSH)
	file := map[string]any{"type": "file", "spec_version": "2.1", "hashes": hashes}
	fid, err := stix.DeterministicID(file)
	if err != nil {
		return nil, fmt.Errorf("file id: %w", err)
	}
	file["id"] = fid
	ts := stix.FormatMicro(now)
	name := s.Name
	if name == "" {
		name = "Shared content hash (" + strings.Join(s.Labels, ", ") + ")"
	}
	ind := map[string]any{
		"type": "indicator", "spec_version": "2.1", "id": "indicator--" + uuid.NewString(),
		"created": ts, "modified": ts, "valid_from": ts, "name": name,
		"indicator_types": []string{"malicious-activity"},
		"labels":          s.Labels,
		"pattern":         "[" + strings.Join(terms, " OR ") + "]",
		"pattern_type":    "stix",
	}
	if h.PDQQuality != nil {
		ind["x_mitra_pdq_quality"] = *h.PDQQuality
	}
	if s.CreatedBy != "" {
		ind["created_by_ref"] = s.CreatedBy
	}
	for _, o := range []map[string]any{file, ind} {
		if len(markings) > 0 {
			o["object_marking_refs"] = markings
		}
		if len(s.Recipients) > 0 {
			o[access.RecipientsProperty] = s.Recipients
		}
	}
	fb, err := json.Marshal(file)
	if err != nil {
		return nil, err
	}
	ib, err := json.Marshal(ind)
	if err != nil {
		return nil, err
	}
	return []json.RawMessage{fb, ib}, nil
}

// Verdict is a partner's feedback on a match: a STIX opinion (§4.11) on
// the indicator, "agree" for a true positive and "disagree" for a false
// one.
type Verdict struct {
	Indicator    string
	TruePositive bool
	Explanation  string
	TLP          string
	Recipients   []string
}

// Object returns the opinion.
func (v Verdict) Object(now time.Time) (json.RawMessage, error) {
	if !strings.HasPrefix(v.Indicator, "indicator--") {
		return nil, fmt.Errorf("verdict on %q: want an indicator id: %w", v.Indicator, ErrInvalid)
	}
	ts := stix.FormatMicro(now)
	op := map[string]any{"type": "opinion", "spec_version": "2.1", "id": "opinion--" + uuid.NewString(),
		"created": ts, "modified": ts, "object_refs": []string{v.Indicator}, "opinion": "disagree"}
	if v.TruePositive {
		op["opinion"] = "agree"
	}
	if v.Explanation != "" {
		op["explanation"] = v.Explanation
	}
	if v.TLP != "" {
		level, err := access.ParseTLP(v.TLP)
		if err != nil {
			return nil, fmt.Errorf("tlp: %v: %w", err, ErrInvalid)
		}
		op["object_marking_refs"] = []string{tlp20[level]}
	}
	if len(v.Recipients) > 0 {
		op[access.RecipientsProperty] = v.Recipients
	}
	return json.Marshal(op)
}

// patternHash finds the content hashes a pattern compares file:hashes with
// (PDQ, TLSH, MD5, SHA-256), whatever else the pattern says: the match
// service reads a PDQ equality as "within the threshold".
var patternHash = regexp.MustCompile(`file:hashes\.(PDQ|TLSH|MD5|'SHA-256'|SHA256|'MD5'|'PDQ'|'TLSH')\s*=\s*'([0-9A-Za-z]+)'`)

func hashesOfPattern(p string) Hashes {
	var h Hashes
	for _, m := range patternHash.FindAllStringSubmatch(p, -1) {
		v := m[2]
		switch strings.Trim(m[1], "'") {
		case "PDQ":
			h.PDQ = strings.ToLower(v)
		case "TLSH":
			h.TLSH = strings.ToUpper(v)
		case "MD5":
			h.MD5 = strings.ToLower(v)
		case "SHA-256", "SHA256":
			h.SHA256 = strings.ToLower(v)
		}
	}
	return h
}
