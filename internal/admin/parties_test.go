package admin_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestOrganisationsGroupsGrantsAudit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	root := e.root()
	var org struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	root.do(http.MethodPost, "/admin/orgs", map[string]any{"name": "Grid Operator", "anonymise_sightings": true}).wantJSON(http.StatusCreated, &org)
	if !strings.HasPrefix(org.ID, "identity--") {
		t.Fatalf("org = %+v", org)
	}
	root.do(http.MethodPost, "/admin/orgs", map[string]any{"name": "Grid Operator"}).wantError(http.StatusConflict)
	var grp struct {
		ID   string   `json:"id"`
		Orgs []string `json:"orgs"`
	}
	root.do(http.MethodPost, "/admin/groups", map[string]any{"name": "energy", "orgs": []string{"Grid Operator"}}).wantJSON(http.StatusCreated, &grp)
	if len(grp.Orgs) != 1 || grp.Orgs[0] != org.ID {
		t.Fatalf("group = %+v", grp)
	}
	root.do(http.MethodPost, "/admin/groups", map[string]any{"name": "bad", "orgs": []string{"nobody"}}).wantError(http.StatusNotFound)
	var u user
	root.do(http.MethodPost, "/admin/users", map[string]any{"name": "gina", "password": "a-long-password", "organisation": "Grid Operator"}).wantJSON(http.StatusCreated, &u)
	if u.Organisation != org.ID {
		t.Errorf("user organisation = %q, want %q", u.Organisation, org.ID)
	}
	var c collection
	root.do(http.MethodPost, "/admin/collections", map[string]any{"title": "Energy"}).wantJSON(http.StatusCreated, &c)
	// gina sees nothing until her organisation's group gets a grant.
	gina := e.basic("gina", "a-long-password")
	if st := gina.taxiiGet("/api/collections/" + c.ID + "/"); st != http.StatusNotFound {
		t.Fatalf("collection visible before the grant: %d", st)
	}
	var view struct {
		Grants []struct {
			Kind    string `json:"kind"`
			Subject string `json:"subject"`
			Read    bool   `json:"read"`
		} `json:"grants"`
		DefaultTLP string `json:"default_tlp"`
	}
	root.do(http.MethodPut, "/admin/collections/"+c.ID+"/group-grants/energy", map[string]any{"read": true}).wantJSON(http.StatusOK, &view)
	if len(view.Grants) != 1 || view.Grants[0].Kind != "group" || view.Grants[0].Subject != grp.ID || view.DefaultTLP != "TLP:AMBER" {
		t.Errorf("collection after group grant = %+v", view)
	}
	if st := gina.taxiiGet("/api/collections/" + c.ID + "/"); st != http.StatusOK {
		t.Errorf("collection not visible through the group grant: %d", st)
	}
	root.do(http.MethodPut, "/admin/collections/"+c.ID+"/group-grants/energy", map[string]any{"read": false}).want(http.StatusOK)
	root.do(http.MethodPut, "/admin/collections/"+c.ID+"/org-grants/"+org.ID, map[string]any{"read": true, "write": true}).want(http.StatusOK)
	if st := gina.taxiiGet("/api/collections/" + c.ID + "/"); st != http.StatusOK {
		t.Errorf("collection not visible through the organisation grant: %d", st)
	}
	root.do(http.MethodPut, "/admin/collections/"+c.ID+"/org-grants/nobody", map[string]any{"read": true}).wantError(http.StatusNotFound)
	// Every change above is in the audit log.
	var recs []struct {
		Principal string
		Action    string
		Path      string
	}
	root.do(http.MethodGet, "/admin/audit?action=admin.", nil).wantJSON(http.StatusOK, &recs)
	var puts int
	for _, r := range recs {
		if r.Principal != "root" {
			t.Errorf("audit record by %q", r.Principal)
		}
		if r.Action == "admin.put" {
			puts++
		}
	}
	if puts != 3 || len(recs) < 7 {
		t.Errorf("audit has %d records, %d grants: %+v", len(recs), puts, recs)
	}
	root.do(http.MethodGet, "/admin/audit?since=yesterday", nil).wantError(http.StatusBadRequest)
	// Newest first, paged with before.
	var page1, page2 []struct {
		Seq    int64
		Action string
	}
	root.do(http.MethodGet, "/admin/audit?action=admin.&limit=2", nil).wantJSON(http.StatusOK, &page1)
	if len(page1) != 2 || page1[0].Seq <= page1[1].Seq {
		t.Fatalf("first page = %+v", page1)
	}
	root.do(http.MethodGet, fmt.Sprintf("/admin/audit?action=admin.&limit=2&before=%d", page1[1].Seq), nil).wantJSON(http.StatusOK, &page2)
	if len(page2) != 2 || page2[0].Seq >= page1[1].Seq || page2[1].Seq >= page2[0].Seq {
		t.Errorf("second page = %+v after %+v", page2, page1)
	}
	root.do(http.MethodGet, "/admin/audit?before=x", nil).wantError(http.StatusBadRequest)
	root.do(http.MethodGet, "/admin/audit?limit=100000", nil).wantError(http.StatusBadRequest)
	root.do(http.MethodDelete, "/admin/orgs/"+org.ID, nil).wantError(http.StatusConflict) // gina belongs to it
	root.do(http.MethodDelete, "/admin/groups/energy", nil).want(http.StatusNoContent)
	var groups []any
	root.do(http.MethodGet, "/admin/groups", nil).wantJSON(http.StatusOK, &groups)
	if len(groups) != 0 {
		t.Errorf("groups after delete: %v", groups)
	}
}
