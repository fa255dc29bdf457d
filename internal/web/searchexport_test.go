package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mitra-cert/mitra/internal/feeds"
)

// TestSearchExportControl: the search results page offers every export
// format; choosing one leads (303) to the export API's address with the
// search's filters as the search API names them (the console's "mine"
// filter as the user's organisation, its inclusive end date as the
// exclusive next day), never to a page of the previous results' cursor;
// an unknown format is ignored.
func TestSearchExportControl(t *testing.T) {
	w := newWorld(t, false)
	alice := w.browser()
	alice.mustSignIn("alice")
	const search = "/console/search?q=scanner&tlp=green&org=mine&from=2026-01-01&to=2026-01-31"
	r := alice.get("/console/search?q=scanner&tlp=green&cursor=bzow") // the cursor of offset 0
	form := between(r.body, `id="search-export"`, "</form>")
	if r.status != http.StatusOK || form == "" {
		t.Fatalf("no export control: %d %s", r.status, r.body)
	}
	for _, f := range feeds.ExportFormats() {
		if !strings.Contains(form, `<option value="`+f+`">`) {
			t.Errorf("format %s not offered", f)
		}
	}
	if !strings.Contains(form, `name="q" value="scanner"`) || !strings.Contains(form, `name="tlp" value="green"`) || strings.Contains(form, "bzow") {
		t.Errorf("export form's filters: %s", form)
	}

	r = alice.get(search + "&export=suricata")
	loc, err := url.Parse(r.header.Get("Location"))
	if r.status != http.StatusSeeOther || err != nil || loc.Path != feeds.ExportPrefix+"suricata" {
		t.Fatalf("export: %d %q", r.status, r.header.Get("Location"))
	}
	want := url.Values{"q": {"scanner"}, "tlp": {"green"}, "organisation": {w.orgA}, "modified_from": {"2026-01-01"}, "modified_to": {"2026-02-01"}}
	if loc.Query().Encode() != want.Encode() {
		t.Errorf("export filters %s, want %s", loc.Query().Encode(), want.Encode())
	}
	if got := feeds.SearchOf(loc.Query()); got == nil {
		t.Error("the export address is not an export from a search")
	}
	if r := alice.get("/console/search?q=&export=nope"); r.status != http.StatusOK || !strings.Contains(r.body, `id="search-export"`) {
		t.Errorf("unknown format: %d", r.status)
	}
}
