package taxii

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
)

func formatTime(t time.Time) string { return stix.FormatMicro(t) }

// queryKind says which filters an endpoint takes (TAXII 2.1 §5.3–§5.8).
type queryKind int

const (
	kindList     queryKind = iota // objects, manifest: every filter
	kindObject                    // one object: version, spec_version
	kindVersions                  // versions: spec_version only
	kindDelete                    // delete: version, spec_version; no paging
)

// parseQuery reads the URL query of a TAXII request (TAXII 2.1 §3.4). Any
// malformed parameter gives 400, as §3.4 requires.
func (s *Server) parseQuery(u *url.URL, kind queryKind) (store.Query, error) {
	var q store.Query
	vals, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return q, badRequest("the query string is malformed: " + err.Error())
	}
	single := func(name string) (string, bool, error) {
		v, ok := vals[name]
		if !ok {
			return "", false, nil
		}
		if len(v) != 1 {
			return "", false, badRequest(name + " must occur at most once")
		}
		return v[0], true, nil
	}
	if kind != kindDelete {
		if v, ok, err := single("added_after"); err != nil {
			return q, err
		} else if ok {
			t, err := stix.ParseTimestamp(v)
			if err != nil {
				return q, badRequest("added_after: " + err.Error())
			}
			q.AddedAfter = t
		}
		q.Limit = s.cfg.PageSize
		if v, ok, err := single("limit"); err != nil {
			return q, err
		} else if ok {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return q, badRequest("limit must be a positive integer")
			}
			// A larger limit than the server allows gets a shorter page
			// with more=true (TAXII 2.1 §3.4).
			q.Limit = min(n, s.cfg.PageSize)
		}
		if v, ok, err := single("next"); err != nil {
			return q, err
		} else if ok {
			t, err := decodeNext(v)
			if err != nil {
				return q, badRequest("next is not a value this server issued")
			}
			if t.After(q.AddedAfter) {
				q.AddedAfter = t
			}
		}
	}
	list := func(field string) ([]string, bool, error) {
		v, ok := vals["match["+field+"]"]
		if !ok {
			return nil, false, nil
		}
		if len(v) != 1 {
			return nil, false, badRequest("match[" + field + "] must occur at most once; separate several values with commas")
		}
		parts := strings.Split(v[0], ",")
		for _, p := range parts {
			if p == "" {
				return nil, false, badRequest("match[" + field + "] has an empty value")
			}
		}
		return parts, true, nil
	}
	if kind == kindList {
		if q.IDs, _, err = list("id"); err != nil {
			return q, err
		}
		if q.Types, _, err = list("type"); err != nil {
			return q, err
		}
	}
	if q.SpecVersions, _, err = list("spec_version"); err != nil {
		return q, err
	}
	if kind == kindVersions {
		q.Versions.All = true
		return q, nil
	}
	versions, ok, err := list("version")
	if err != nil || !ok {
		return q, err
	}
	seen := map[string]bool{}
	for _, v := range versions {
		if seen[v] {
			return q, badRequest("match[version] repeats " + v)
		}
		seen[v] = true
		switch v {
		case "all":
			q.Versions.All = true
		case "first":
			q.Versions.First = true
		case "last":
			q.Versions.Last = true
		default:
			t, err := stix.ParseTimestamp(v)
			if err != nil {
				return q, badRequest("match[version]: " + err.Error())
			}
			q.Versions.Exact = append(q.Versions.Exact, t)
		}
	}
	if q.Versions.All && len(versions) > 1 {
		return q, badRequest("match[version]=all cannot be combined with other versions")
	}
	return q, nil
}

// The next token is the date_added of the last entry sent, in microseconds:
// resuming strictly after it neither skips nor repeats, because date_added
// is unique and increasing in commit order within a collection.
func encodeNext(t time.Time) string { return strconv.FormatInt(t.UnixMicro(), 36) }

func decodeNext(v string) (time.Time, error) {
	n, err := strconv.ParseInt(v, 36, 64)
	if err != nil || n <= 0 {
		return time.Time{}, errors.New("bad next")
	}
	return time.UnixMicro(n).UTC(), nil
}

func (s *Server) readable(r *http.Request, p *access.Principal) (*store.Collection, error) {
	c, read, _, err := s.collectionFor(r.Context(), r, p)
	if err != nil {
		return nil, err
	}
	if !read {
		return nil, errorf(http.StatusForbidden, "Forbidden", "you may not read this collection")
	}
	return c, nil
}

// pageHeaders sets X-TAXII-Date-Added-First/-Last (TAXII 2.1 §3.2).
func pageHeaders(w http.ResponseWriter, p *store.Page) {
	if len(p.Entries) == 0 {
		return
	}
	w.Header().Set("X-TAXII-Date-Added-First", formatTime(p.Entries[0].DateAdded))
	w.Header().Set("X-TAXII-Date-Added-Last", formatTime(p.Entries[len(p.Entries)-1].DateAdded))
}

// writeEnvelope streams an envelope (TAXII 2.1 §3.7) with the objects' bytes
// as stored: no decoding, no re-serialisation.
func writeEnvelope(w http.ResponseWriter, p *store.Page) error {
	var b bytes.Buffer
	size := 64
	for _, e := range p.Entries {
		size += len(e.Raw) + 1
	}
	b.Grow(size)
	b.WriteByte('{')
	if p.More {
		b.WriteString(`"more":true,"next":"`)
		b.WriteString(encodeNext(p.Entries[len(p.Entries)-1].DateAdded))
		b.WriteString(`"`)
	}
	if len(p.Entries) > 0 {
		if p.More {
			b.WriteByte(',')
		}
		b.WriteString(`"objects":[`)
		for i, e := range p.Entries {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(e.Raw)
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
	pageHeaders(w, p)
	w.Header().Set("Content-Type", MediaType)
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(b.Bytes())
	return err
}

// readPage serves the read endpoints: it checks read access, parses the
// filters the endpoint takes, queries the page the policy lets p see and,
// for the endpoints of one object, answers 404 when p can see no version of
// it at all.
func (s *Server) readPage(r *http.Request, p *access.Principal, kind queryKind, withBody bool) (*store.Page, error) {
	c, err := s.readable(r, p)
	if err != nil {
		return nil, err
	}
	q, err := s.parseQuery(r.URL, kind)
	if err != nil {
		return nil, err
	}
	q.WithBody, q.Visible = withBody, visible(p, c)
	id := r.PathValue("object")
	if id != "" {
		q.IDs = []string{id}
	}
	if s.cfg.IncomingIDs != nil && len(q.IDs) > 0 {
		// The ids p knows objects by (Config.Outgoing may have rewritten
		// some) to the local ones.
		if q.IDs, err = s.cfg.IncomingIDs(r.Context(), p, c, q.IDs); err != nil {
			return nil, err
		}
		if len(q.IDs) == 0 {
			if id != "" {
				return nil, notFound("object")
			}
			return &store.Page{}, nil
		}
		if id != "" {
			id = q.IDs[0]
		}
	}
	var page *store.Page
	if id == "" && (!q.Versions.IsZero() || len(q.SpecVersions) > 0) {
		page, err = s.listVersions(r.Context(), p, c, q)
	} else {
		page, err = s.cfg.Store.QueryObjects(r.Context(), c.ID, q)
	}
	if err != nil {
		return nil, err
	}
	if id != "" {
		// Tell "no such object" from "no version matches the filter". An
		// object exists for p when p may see the version served by default
		// (its latest): one whose latest version is hidden answers exactly
		// like an unknown id, even if p could see an older version. The
		// default query has just asked that very question.
		exists := len(page.Entries) > 0
		if kind != kindObject || !q.Versions.IsZero() || len(q.SpecVersions) > 0 {
			if exists, err = s.objectVisible(r.Context(), p, c, id); err != nil {
				return nil, err
			}
		}
		if !exists {
			return nil, notFound("object")
		}
	}
	if err := s.afterRead(r, p, c, page); err != nil {
		return nil, err
	}
	return page, nil
}

func (s *Server) getObjects(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	page, err := s.readPage(r, p, kindList, true)
	if err != nil {
		return err
	}
	return writeEnvelope(w, page)
}

func (s *Server) getObject(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	page, err := s.readPage(r, p, kindObject, true)
	if err != nil {
		return err
	}
	return writeEnvelope(w, page)
}

// listing is the shape of the manifest and versions resources (TAXII 2.1
// §5.3.1, §5.8.1): more, next and a list under key that is omitted when
// empty.
func writeListing[T any](w http.ResponseWriter, page *store.Page, key string, item func(store.Entry) T) error {
	out := map[string]any{}
	if page.More {
		out["more"] = true
		out["next"] = encodeNext(page.Entries[len(page.Entries)-1].DateAdded)
	}
	if len(page.Entries) > 0 {
		items := make([]T, len(page.Entries))
		for i, e := range page.Entries {
			items[i] = item(e)
		}
		out[key] = items
	}
	pageHeaders(w, page)
	return writeJSON(w, http.StatusOK, out)
}

// manifestRecord is a TAXII 2.1 manifest-record (§5.3.1).
type manifestRecord struct {
	ID        string `json:"id"`
	DateAdded string `json:"date_added"`
	Version   string `json:"version"`
	MediaType string `json:"media_type"`
}

func (s *Server) manifest(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	page, err := s.readPage(r, p, kindList, false)
	if err != nil {
		return err
	}
	return writeListing(w, page, "objects", func(e store.Entry) manifestRecord {
		return manifestRecord{ID: e.ID, DateAdded: formatTime(e.DateAdded), Version: e.VersionRaw, MediaType: stixMediaType}
	})
}

func (s *Server) versions(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	page, err := s.readPage(r, p, kindVersions, false)
	if err != nil {
		return err
	}
	return writeListing(w, page, "versions", func(e store.Entry) string { return e.VersionRaw })
}

func (s *Server) deleteObject(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	c, read, write, err := s.collectionFor(r.Context(), r, p)
	if err != nil {
		return err
	}
	// Deleting needs both rights; with one of them the answer is 403
	// (TAXII 2.1 §5.7 table).
	if !read || !write {
		return errorf(http.StatusForbidden, "Forbidden", "deleting needs both read and write access to the collection")
	}
	q, err := s.parseQuery(r.URL, kindDelete)
	if err != nil {
		return err
	}
	id := r.PathValue("object")
	// An object p may not see does not exist for p (readPage), whoever
	// asks: 404 before anything else is said about it.
	if ok, err := s.objectVisible(r.Context(), p, c, id); err != nil {
		return err
	} else if !ok {
		return notFound("object")
	}
	// Only versions the caller may see can be deleted: anything else would
	// reveal that they exist.
	q.Visible = visible(p, c)
	// Only the owning organisation deletes (STIX 2.1 §3.6: only the creator
	// versions an object; a delete is the strongest change). The server's
	// admin may delete anyone's object (moderation), which is audited as
	// such.
	q.Owner = p.Organisation
	action, detail := "objects.delete", ""
	if p.IsAdmin() {
		owners, err := s.cfg.Store.ObjectOwners(r.Context(), []string{id})
		if err != nil {
			return err
		}
		if w, ok := owners[id]; ok && w != p.Organisation {
			q.Owner, action, detail = "", "objects.moderate", "; owned by "+w
		}
	}
	var n int
	if u, ok := s.cfg.Store.(store.Updater); ok && s.cfg.BeforeDelete != nil {
		err = u.Update(r.Context(), c.ID, func(ctx context.Context, tx store.Tx) error {
			if err := s.cfg.BeforeDelete(ctx, tx, c, id); err != nil {
				return err
			}
			var err error
			n, err = tx.Delete(ctx, id, q)
			return err
		})
	} else {
		n, err = s.cfg.Store.DeleteObject(r.Context(), c.ID, id, q)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound("object")
	case errors.Is(err, store.ErrForbidden):
		// p sees the object (checked above), so saying who may delete it
		// reveals nothing p could not read.
		return errorf(http.StatusForbidden, "Forbidden", "only the organisation that created this object may delete it (STIX 2.1 §3.6); to correct it, publish your own object: a note, an opinion, or a new object with a derived-from relationship")
	case err != nil:
		return err
	}
	if err := s.cfg.Store.AppendAudit(r.Context(), store.AuditRecord{Principal: p.User, Organisation: p.Organisation,
		Action: action, Path: r.URL.RequestURI(), Collection: c.ID, Objects: []string{id}, Detail: fmt.Sprintf("%d versions%s", n, detail)}); err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "object deleted", "user", p.User, "collection", c.ID, "object", id, "versions", n, "action", action)
	w.Header().Set("Content-Type", MediaType)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) addObjects(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	c, _, write, err := s.collectionFor(r.Context(), r, p)
	if err != nil {
		return err
	}
	if !write {
		return errorf(http.StatusForbidden, "Forbidden", "you may not add objects to this collection")
	}
	// TAXII 2.1 §3.1: POSTs MUST carry a valid Content-Type; a type we do not
	// take gets 415 (§5.5).
	if !contentTypeOK(r.Header.Get("Content-Type")) {
		return errorf(http.StatusUnsupportedMediaType, "Unsupported media type", "POST an envelope as "+MediaType)
	}
	limit := s.cfg.MaxContentLength
	if r.ContentLength > limit {
		return errorf(http.StatusRequestEntityTooLarge, "Request too large", fmt.Sprintf("the body has %d bytes; max_content_length is %d", r.ContentLength, limit))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errorf(http.StatusRequestEntityTooLarge, "Request too large", fmt.Sprintf("max_content_length is %d bytes", limit))
	}
	if err != nil {
		return badRequest("could not read the request body: " + err.Error())
	}
	if err := bareObject(body); err != nil {
		return err
	}
	raws, err := splitEnvelope(body)
	if err != nil {
		return errorf(http.StatusUnprocessableEntity, "Unprocessable envelope", "the body is not a TAXII envelope: "+err.Error())
	}
	markings, err := s.resolveMarkings(r.Context(), markingIDs(nil, body), raws)
	if err != nil {
		return err
	}
	orgs, err := s.organisations(r.Context())
	if err != nil {
		return err
	}
	st := &store.Status{
		ID:               uuid.NewString(),
		Owner:            p.User,
		CollectionID:     c.ID,
		RequestTimestamp: s.cfg.Now(),
		Complete:         true,
		TotalCount:       len(raws),
	}
	// Every object is validated (on every core) before the store is
	// asked for anything, so that the collection's write lock is held only
	// for writing; concurrent POSTs then share one commit (ingest.go).
	var objs []store.Object
	var relayed []string
	for chunk := range s.check(p, raws, markings, orgs) {
		for _, ch := range chunk {
			if ch.failure != nil {
				st.Failures = append(st.Failures, *ch.failure)
				continue
			}
			objs = append(objs, ch.obj)
			if ch.relayed {
				relayed = append(relayed, ch.obj.ID)
			}
		}
	}
	// A version from an organisation that does not own the object (STIX
	// 2.1 §3.6) is refused by the store inside the transaction and
	// reported as a failure in st with one fixed message, decided before
	// any comparison with stored versions: the same whether the caller can
	// see the object or not, whichever versions exist and in whichever
	// collection, so that it reveals only that the (random) id is taken.
	audit := func(*store.AddRequest) []store.AuditRecord {
		ids := make([]string, 0, len(st.Successes))
		for _, d := range st.Successes {
			ids = append(ids, d.ID)
		}
		recs := []store.AuditRecord{{Principal: p.User, Organisation: p.Organisation, Action: "objects.add", Path: r.URL.Path,
			Collection: c.ID, Objects: ids, Detail: fmt.Sprintf("status %s: %d added, %d refused", st.ID, len(st.Successes), len(st.Failures))}}
		if len(relayed) > 0 {
			recs = append(recs, store.AuditRecord{Principal: p.User, Organisation: p.Organisation, Action: "objects.relay", Path: r.URL.Path,
				Collection: c.ID, Objects: relayed, Detail: "submitted on behalf of the organisations in their created_by_ref"})
		}
		return recs
	}
	if err := s.commit(r.Context(), c.ID, &store.AddRequest{Objects: objs, Status: st, Audit: audit}); err != nil {
		return err
	}
	s.metrics.ingest(c.ID, len(st.Successes), len(st.Failures))
	s.log.InfoContext(r.Context(), "objects added", "user", p.User, "collection", c.ID, "total", st.TotalCount, "successes", len(st.Successes), "failures", len(st.Failures))
	return writeJSON(w, http.StatusAccepted, statusResource(st))
}

type checkedObject struct {
	obj     store.Object
	failure *store.StatusDetail
	relayed bool // created_by_ref names another organisation of this server
}

// resolveMarkings learns every marking definition the objects of an
// envelope may refer to beyond the well-known TLP ones: valid
// marking-definition objects sent in the same envelope and those stored on
// the server (in any collection). Where both exist for one id the stricter
// counts (access.Resolver.Learn), so that a definition stored first by
// someone else cannot weaken the author's. The store is asked only about
// ids the body mentions (ids, from markingIDs), once per request, before
// the write transaction.
func (s *Server) resolveMarkings(ctx context.Context, ids []string, raws []json.RawMessage) (*access.Resolver, error) {
	r := &access.Resolver{}
	unknown := r.Unknown(ids)
	if len(unknown) == 0 {
		return r, nil
	}
	for _, raw := range raws {
		if !bytes.Contains(raw, []byte(`"marking-definition"`)) {
			continue
		}
		h, probs := s.cfg.Validator.Inspect(raw)
		if len(probs) > 0 || h.Type != "marking-definition" {
			continue // refused below; an invalid definition resolves nothing
		}
		if level, err := access.MarkingLevel(raw); err == nil {
			r.Learn(h.ID, level)
		}
	}
	stored, err := s.cfg.Store.MarkingDefinitions(ctx, unknown)
	if err != nil {
		return nil, fmt.Errorf("resolve markings: %w", err)
	}
	for id, raw := range stored {
		if level, err := access.MarkingLevel(raw); err == nil {
			r.Learn(id, level)
		}
	}
	return r, nil
}

// markingIDs appends to ids the marking-definition ids written anywhere in
// body and not in ids yet (a superset of those the objects refer to; ids
// written with JSON escapes are missed and so stay unresolved: the
// strictest outcome).
func markingIDs(ids []string, body []byte) []string {
	const prefix = "marking-definition--"
	const uuidLen = 36
	for i := 0; ; {
		j := bytes.Index(body[i:], []byte(prefix))
		if j < 0 {
			return ids
		}
		start := i + j
		end := start + len(prefix) + uuidLen
		// Most objects of a body carry one of a few markings: an id seen
		// already costs a comparison, not an allocation.
		if end <= len(body) && !slices.ContainsFunc(ids, func(id string) bool { return id == string(body[start:end]) }) &&
			uuid.Validate(string(body[start+len(prefix):end])) == nil {
			ids = append(ids, string(body[start:end]))
		}
		i = start + len(prefix)
	}
}

// organisations returns the ids of the organisations registered on the
// server. (Asked on every POST: looking for "created_by_ref" in the body
// first would miss a key written with JSON escapes.)
func (s *Server) organisations(ctx context.Context) (map[string]bool, error) {
	list, err := s.cfg.Store.ListOrganisations(ctx)
	if err != nil {
		return nil, fmt.Errorf("list organisations: %w", err)
	}
	orgs := make(map[string]bool, len(list))
	for _, o := range list {
		orgs[o.ID] = true
	}
	return orgs, nil
}

// checkChunk is how many objects check hands over at a time.
const checkChunk = 100

// check validates and reads the header of every object on all cores, and
// yields the results chunk by chunk, in order, as soon as each chunk is
// done, so that storing a chunk overlaps with checking the next ones.
//
// Each object gets its TLP from markings and its owner: the organisation
// named in created_by_ref when that is an organisation of this server and
// the submitter may speak for it (its own, or any for the relay and admin
// roles), else the submitter's organisation. An identity that is not an
// organisation of this server (a vendor, MITRE, a researcher) may be named
// by any writer: the object is the submitter's, who is recorded as its
// provenance.
func (s *Server) check(p *access.Principal, raws []json.RawMessage, markings *access.Resolver, orgs map[string]bool) iter.Seq[[]checkedObject] {
	out := make([]checkedObject, len(raws))
	one := func(i int) {
		raw := raws[i]
		// One decoding serves validation and the header the store needs.
		h, probs := s.cfg.Validator.Inspect(raw)
		if len(probs) > 0 {
			problems := make([]string, len(probs))
			for i, p := range probs {
				problems[i] = p.String()
			}
			d := &store.StatusDetail{ID: "unknown", Version: "unknown"}
			var hj struct {
				ID       any `json:"id"`
				Modified any `json:"modified"`
				Created  any `json:"created"`
			}
			// The version is the modified (else created) timestamp even
			// when the id is missing (TAXII 2.1 §4.3.1).
			if json.Unmarshal(raw, &hj) == nil {
				d.ID = cmp.Or(asString(hj.ID), "unknown")
				d.Version = cmp.Or(asString(hj.Modified), asString(hj.Created), "unknown")
			}
			const maxShown = 5
			msg := strings.Join(problems[:min(len(problems), maxShown)], "; ")
			if len(problems) > maxShown {
				msg += fmt.Sprintf("; and %d more", len(problems)-maxShown)
			}
			d.Message = "invalid: " + msg
			out[i].failure = d
			return
		}
		o := store.Object{ID: h.ID, Type: h.Type, SpecVersion: h.SpecVersion, Raw: []byte(raw),
			Submitter: p.Organisation, TLP: int(markings.Classify(h.MarkingRefs)), Recipients: h.Recipients,
			Owner: p.Organisation}
		o.Version, o.VersionRaw, _ = h.Version()
		// The submitter is who authenticated, whatever the object claims; an
		// object created by another organisation of this server needs a
		// relaying role, and then belongs to that organisation.
		if h.CreatedByRef != "" && h.CreatedByRef != p.Organisation && orgs[h.CreatedByRef] {
			if !p.MayRelay() {
				out[i].failure = &store.StatusDetail{ID: h.ID, Version: cmp.Or(o.VersionRaw, "unknown"),
					Message: "refused: created_by_ref names " + h.CreatedByRef + ", another organisation of this server, not yours (" + p.Organisation + "); only the relay and admin roles may submit objects on behalf of others"}
				return
			}
			out[i].relayed = true
			o.Owner = h.CreatedByRef
		}
		// An organisation's identity object (the one its created_by_ref
		// names) is the organisation's: nobody else may publish it first
		// and so own it.
		if h.ID != p.Organisation && orgs[h.ID] {
			if !p.MayRelay() {
				out[i].failure = &store.StatusDetail{ID: h.ID, Version: cmp.Or(o.VersionRaw, "unknown"),
					Message: "refused: " + h.ID + " is the identity of another organisation of this server; only that organisation, relays and admins may submit it"}
				return
			}
			o.Owner = h.ID
		}
		out[i].obj = o
	}
	return func(yield func([]checkedObject) bool) {
		n := (len(raws) + checkChunk - 1) / checkChunk
		done := make([]chan struct{}, n)
		next := make(chan int, n)
		for i := range n {
			done[i] = make(chan struct{})
			next <- i
		}
		close(next)
		stop := make(chan struct{})
		defer close(stop) // the consumer gave up: workers stop at the next chunk
		// Every core: the store's write lock is not held meanwhile.
		for range min(runtime.GOMAXPROCS(0), n) {
			go func() {
				for ci := range next {
					select {
					case <-stop:
						return
					default:
					}
					for i := ci * checkChunk; i < min((ci+1)*checkChunk, len(raws)); i++ {
						one(i)
					}
					close(done[ci])
				}
			}()
		}
		for ci := range n {
			<-done[ci]
			if !yield(out[ci*checkChunk : min((ci+1)*checkChunk, len(raws))]) {
				return
			}
		}
	}
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}

// listVersions answers a list query (objects, manifest) that may return
// versions other than the latest: an object whose latest version p may not
// see does not exist for p (readPage), so none of its versions is listed,
// even one p could see. The store's filter sees one entry at a time, so the
// ids whose latest version is hidden are learnt from the page itself and
// the page is asked again until it holds none of them. The page is asked
// one entry longer than the limit, so that more is true exactly when a
// listable entry follows: pages stay full and more reveals nothing.
func (s *Server) listVersions(ctx context.Context, p *access.Principal, c *store.Collection, q store.Query) (*store.Page, error) {
	decide := visible(p, c)
	hidden := map[string]bool{} // ids whose latest version p may not see
	checked := map[string]bool{}
	limit := q.Limit
	q.Limit = limit + 1
	q.Visible = func(e *store.Entry) bool { return !hidden[e.ID] && decide(e) }
	for {
		page, err := s.cfg.Store.QueryObjects(ctx, c.ID, q)
		if err != nil {
			return nil, err
		}
		var fresh []string
		for _, e := range page.Entries {
			if !checked[e.ID] {
				checked[e.ID] = true
				fresh = append(fresh, e.ID)
			}
		}
		again := false
		if len(fresh) > 0 {
			latest, err := s.latestOf(ctx, c.ID, fresh, page.Entries[0].DateAdded)
			if err != nil {
				return nil, err
			}
			for i := range latest {
				if e := &latest[i]; !decide(e) {
					hidden[e.ID], again = true, true
				}
			}
		}
		if again {
			continue
		}
		if len(page.Entries) > limit {
			page.Entries, page.More = page.Entries[:limit], true
		}
		return page, nil
	}
}

// latestOf returns the version served by default of each of ids, which
// come from a page of entries starting at from. Latest versions are
// usually added last, often in the page itself: the latest versions from
// from onwards are read first in date_added order (the cheap scan the page
// itself took), and only the ids not found there are looked up by id.
func (s *Server) latestOf(ctx context.Context, collectionID string, ids []string, from time.Time) ([]store.Entry, error) {
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	var out []store.Entry
	near, err := s.cfg.Store.QueryObjects(ctx, collectionID, store.Query{AddedAfter: from.Add(-time.Microsecond), Limit: len(ids)})
	if err != nil {
		return nil, err
	}
	for _, e := range near.Entries {
		if want[e.ID] {
			out = append(out, e)
			delete(want, e.ID)
		}
	}
	if len(want) == 0 {
		return out, nil
	}
	rest := make([]string, 0, len(want))
	for _, id := range ids {
		if want[id] {
			rest = append(rest, id)
		}
	}
	far, err := s.cfg.Store.QueryObjects(ctx, collectionID, store.Query{IDs: rest, Limit: len(rest)})
	if err != nil {
		return nil, err
	}
	return append(out, far.Entries...), nil
}

// objectVisible reports whether p may see the version of object id that c
// serves by default (its latest, of the latest spec_version): whether the
// object exists for p.
func (s *Server) objectVisible(ctx context.Context, p *access.Principal, c *store.Collection, id string) (bool, error) {
	page, err := s.cfg.Store.QueryObjects(ctx, c.ID, store.Query{IDs: []string{id}, Limit: 1, Visible: visible(p, c)})
	if err != nil {
		return false, err
	}
	return len(page.Entries) > 0, nil
}

// visible is the access policy's decision for p reading c, as a store filter.
func visible(p *access.Principal, c *store.Collection) func(*store.Entry) bool {
	return func(e *store.Entry) bool { return access.Decide(p, c, e).Allowed }
}

// afterRead redacts sightings for p and records reads of AMBER+STRICT and
// RED objects in the audit log.
func (s *Server) afterRead(r *http.Request, p *access.Principal, c *store.Collection, page *store.Page) error {
	var strict []string
	var anonymous []string
	loaded := false
	for i := range page.Entries {
		e := &page.Entries[i]
		if access.EffectiveTLP(c, e) >= access.TLPAmberStrict {
			strict = append(strict, e.ID)
		}
		if e.Type == "sighting" && e.Raw != nil {
			if !loaded {
				orgs, err := s.cfg.Store.ListOrganisations(r.Context())
				if err != nil {
					return err
				}
				for _, o := range orgs {
					if o.AnonymiseSightings {
						anonymous = append(anonymous, o.ID)
					}
				}
				loaded = true
			}
			e.Raw = access.RedactSighting(p, e, anonymous)
		}
	}
	if s.cfg.Outgoing != nil {
		if err := s.cfg.Outgoing(r.Context(), p, c, page.Entries); err != nil {
			return err
		}
	}
	if len(strict) == 0 {
		return nil
	}
	return s.cfg.Store.AppendAudit(r.Context(), store.AuditRecord{
		Principal: p.User, Organisation: p.Organisation, Action: "objects.read", Path: r.URL.RequestURI(),
		Collection: c.ID, Objects: strict, Detail: "AMBER+STRICT/RED objects served",
	})
}
