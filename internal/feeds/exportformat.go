package feeds

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sort"
)

// File is one file of an export.
type File struct {
	Name        string
	ContentType string
	Data        []byte
	etag        string // computed once by Render: a cached export is served many times
}

// ETag is the entity tag of the file: a digest of its bytes, so that an
// unchanged export answers If-None-Match with 304 whatever produced it.
func (f *File) ETag() string {
	if f.etag != "" {
		return f.etag
	}
	sum := sha256.Sum256(f.Data)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// Export is a rendered export: its files (the first is the main one) and
// how many indicators were left out, by reason.
type Export struct {
	Format  string
	Files   []File
	Skipped map[string]int
}

// File returns the file called name, or nil.
func (e *Export) File(name string) *File {
	for i := range e.Files {
		if e.Files[i].Name == name {
			return &e.Files[i]
		}
	}
	return nil
}

// RenderOptions tune rendering.
type RenderOptions struct {
	// RPZOrigin is the RPZ zone's name ("rpz.mitra." when empty).
	RPZOrigin string
	// DatasetMin is the number of values of one kind and TLP from which
	// Suricata rules match a dataset or list file instead of one rule per
	// value (20 when zero).
	DatasetMin int
	// Producer names the exporting server in MISP events ("Mitra" when
	// empty).
	Producer string
}

type renderer func(sel *Selection, o RenderOptions, skip func(string)) ([]File, error)

var renderers = map[string]renderer{
	"suricata":   renderSuricata,
	"zeek":       renderZeek,
	"rpz":        renderRPZ,
	"plain":      renderPlain,
	"edl-ip":     renderEDL(KindIP),
	"edl-domain": renderEDL(KindDomain),
	"edl-url":    renderEDL(KindURL),
	"csv":        renderCSV,
	"stix":       renderSTIX,
	"misp":       renderMISP,
}

// ExportFormats lists the export formats.
func ExportFormats() []string { return slices.Sorted(maps.Keys(renderers)) }

// Render writes sel in format.
func Render(format string, sel *Selection, o RenderOptions) (*Export, error) {
	r := renderers[format]
	if r == nil {
		return nil, fmt.Errorf("unknown export format %q (want one of %v): %w", format, ExportFormats(), ErrInvalid)
	}
	ex := &Export{Format: format, Skipped: maps.Clone(sel.Skipped)}
	if ex.Skipped == nil {
		ex.Skipped = map[string]int{}
	}
	files, err := r(sel, o, func(reason string) { ex.Skipped[reason]++ })
	if err != nil {
		return nil, err
	}
	for i := range files {
		files[i].etag = files[i].ETag()
	}
	ex.Files = files
	return ex, nil
}

// SkippedSummary renders the skip counts in one line, reasons sorted.
func SkippedSummary(skipped map[string]int) string {
	var b bytes.Buffer
	keys := make([]string, 0, len(skipped))
	for k := range skipped {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %d", k, skipped[k])
	}
	return b.String()
}

// listed returns the values of ind a format that takes kinds can carry,
// or false (with the reason counted) when it cannot carry all of them:
// an indicator is exported whole or not at all, never narrowed.
func listed(ind *Indicator, format string, skip func(string), kinds ...Kind) ([]Value, bool) {
	if !ind.Expressible {
		skip("pattern is not a list of values (" + format + ")")
		return nil, false
	}
	for _, v := range ind.Values {
		if !slices.Contains(kinds, v.Kind) {
			skip(v.Kind.String() + " values not expressible in " + format)
			return nil, false
		}
	}
	return ind.Values, true
}
