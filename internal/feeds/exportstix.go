package feeds

import (
	"bytes"
	"crypto/sha256"
	"fmt"

	"github.com/google/uuid"
)

// exportNamespace derives the ids of export objects (bundles, MISP events
// and attributes) from their content, so that the same selection renders
// to the same bytes and ETag.
var exportNamespace = uuid.MustParse("6d2b8c1e-0f1a-4f43-9a55-8a1f3f2d7c01")

// renderSTIX is a STIX 2.1 bundle (§8) of the indicators as stored, byte
// for byte; every pattern is expressible in STIX.
func renderSTIX(sel *Selection, _ RenderOptions, _ func(string)) ([]File, error) {
	h := sha256.New()
	size := 64
	for _, ind := range sel.Indicators {
		if ind.Raw == nil {
			return nil, fmt.Errorf("indicator %s: selected without its stored object (Request.SkipRaw)", ind.ID)
		}
		h.Write([]byte(ind.ID))
		h.Write([]byte{0})
		h.Write([]byte(ind.Modified.String()))
		size += len(ind.Raw) + 1
	}
	var b bytes.Buffer
	b.Grow(size)
	b.WriteString(`{"type":"bundle","id":"bundle--`)
	b.WriteString(uuid.NewSHA1(exportNamespace, h.Sum(nil)).String())
	b.WriteString(`","objects":[`)
	for i, ind := range sel.Indicators {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(ind.Raw)
	}
	b.WriteString("]}\n")
	return []File{{Name: "bundle.json", ContentType: "application/stix+json;version=2.1", Data: b.Bytes()}}, nil
}
