package taxii

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"runtime"
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
	page, err := s.cfg.Store.QueryObjects(r.Context(), c.ID, q)
	if err != nil {
		return nil, err
	}
	if id != "" && len(page.Entries) == 0 {
		// Tell "no such object" from "no version matches the filter". Only
		// versions p may see count: an object p may not see does not exist
		// for p.
		found, err := s.cfg.Store.QueryObjects(r.Context(), c.ID, store.Query{IDs: q.IDs, Versions: store.VersionFilter{All: true}, Limit: 1, Visible: q.Visible})
		if err != nil {
			return nil, err
		}
		if len(found.Entries) == 0 {
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
	// Only versions the caller may see can be deleted: anything else would
	// reveal that they exist.
	q.Visible = visible(p, c)
	n, err := s.cfg.Store.DeleteObject(r.Context(), c.ID, id, q)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("object")
	}
	if err != nil {
		return err
	}
	if err := s.cfg.Store.AppendAudit(r.Context(), store.AuditRecord{Principal: p.User, Organisation: p.Organisation,
		Action: "objects.delete", Path: r.URL.RequestURI(), Collection: c.ID, Objects: []string{id}, Detail: fmt.Sprintf("%d versions", n)}); err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "object deleted", "user", p.User, "collection", c.ID, "object", id, "versions", n)
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
	raws, err := splitEnvelope(body)
	if err != nil {
		return errorf(http.StatusUnprocessableEntity, "Unprocessable envelope", "the body is not a TAXII envelope: "+err.Error())
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
	for chunk := range s.check(p, raws) {
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
	s.log.InfoContext(r.Context(), "objects added", "user", p.User, "collection", c.ID, "total", st.TotalCount, "successes", len(st.Successes), "failures", len(st.Failures))
	return writeJSON(w, http.StatusAccepted, statusResource(st))
}

type checkedObject struct {
	obj     store.Object
	failure *store.StatusDetail
	relayed bool // created_by_ref names another organisation
}

// checkChunk is how many objects check hands over at a time.
const checkChunk = 100

// check validates and reads the header of every object on all cores, and
// yields the results chunk by chunk, in order, as soon as each chunk is
// done, so that storing a chunk overlaps with checking the next ones.
func (s *Server) check(p *access.Principal, raws []json.RawMessage) iter.Seq[[]checkedObject] {
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
			Submitter: p.Organisation, TLP: int(access.Classify(h.MarkingRefs)), Recipients: h.Recipients}
		o.Version, o.VersionRaw, _ = h.Version()
		// The submitter is who authenticated, whatever the object claims; an
		// object created by another organisation needs a relaying role.
		if h.CreatedByRef != "" && h.CreatedByRef != p.Organisation {
			if !p.MayRelay() {
				out[i].failure = &store.StatusDetail{ID: h.ID, Version: cmp.Or(o.VersionRaw, "unknown"),
					Message: "refused: created_by_ref names " + h.CreatedByRef + ", not your organisation " + p.Organisation + "; only the relay and admin roles may submit objects on behalf of others"}
				return
			}
			out[i].relayed = true
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
	if len(strict) == 0 {
		return nil
	}
	return s.cfg.Store.AppendAudit(r.Context(), store.AuditRecord{
		Principal: p.User, Organisation: p.Organisation, Action: "objects.read", Path: r.URL.RequestURI(),
		Collection: c.ID, Objects: strict, Detail: "AMBER+STRICT/RED objects served",
	})
}
