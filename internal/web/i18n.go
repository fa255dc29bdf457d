package web

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

//go:embed locales/*.json
var localeFiles embed.FS

// Languages are the console's languages, in the order the switch shows
// them. English is the catalogue's reference: every other language must
// translate every message it has (TestCatalogueComplete).
var Languages = []string{"en", "id", "ru"}

// catalogue holds the messages of every language.
type catalogue struct {
	bundle  *i18n.Bundle
	matcher language.Matcher
	ids     []string // the message ids of the reference language
}

func newCatalogue() (*catalogue, error) {
	b := i18n.NewBundle(language.English)
	b.RegisterUnmarshalFunc("json", json.Unmarshal)
	var ids []string
	var tags []language.Tag
	for _, l := range Languages {
		mf, err := b.LoadMessageFileFS(localeFiles, "locales/"+l+".json")
		if err != nil {
			return nil, fmt.Errorf("console messages %s: %w", l, err)
		}
		if l == "en" {
			for _, m := range mf.Messages {
				ids = append(ids, m.ID)
			}
		}
		tags = append(tags, language.MustParse(l))
	}
	sort.Strings(ids)
	return &catalogue{bundle: b, matcher: language.NewMatcher(tags), ids: ids}, nil
}

// messages returns the ids a language file defines.
func messageIDs(lang string) (map[string]string, error) {
	b, err := fs.ReadFile(localeFiles, "locales/"+lang+".json")
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	return m, json.Unmarshal(b, &m)
}

// pick returns the console language for a stored choice, else for an
// Accept-Language header; English when nothing matches.
func (c *catalogue) pick(choice, accept string) string {
	for _, l := range Languages {
		if choice == l {
			return l
		}
	}
	tags, _, _ := language.ParseAcceptLanguage(accept)
	_, i, conf := c.matcher.Match(tags...)
	if conf == language.No {
		return "en"
	}
	return Languages[i]
}

// locale formats the messages, numbers and dates of one language.
type locale struct {
	lang    string
	loc     *i18n.Localizer
	printer *message.Printer
	// missing collects the ids this locale could not translate, for the
	// log and the tests; a page never shows a raw id silently.
	missing *[]string
}

func (c *catalogue) locale(lang string) *locale {
	return &locale{lang: lang, loc: i18n.NewLocalizer(c.bundle, lang),
		printer: message.NewPrinter(language.MustParse(lang)), missing: new([]string)}
}

// T translates message id; args are name, value pairs for the message's
// template ({{.Name}}). An id the language lacks renders as ⟦id⟧, which
// the tests look for.
func (l *locale) T(id string, args ...any) string {
	var data map[string]any
	if len(args) > 0 {
		data = map[string]any{}
		for i := 0; i+1 < len(args); i += 2 {
			data[fmt.Sprint(args[i])] = args[i+1]
		}
	}
	s, err := l.loc.Localize(&i18n.LocalizeConfig{MessageID: id, TemplateData: data})
	if err != nil {
		// go-i18n falls back to English with an error: that would be a
		// mixed-language page, so show the gap instead.
		*l.missing = append(*l.missing, id)
		return "⟦" + id + "⟧"
	}
	return s
}

// Lang is the language's BCP 47 tag, for the page's lang attribute.
func (l *locale) Lang() string { return l.lang }

// N formats an integer with the language's digit grouping.
func (l *locale) N(n any) string { return l.printer.Sprintf("%d", n) }

// D formats a time as the language writes dates (UTC).
func (l *locale) D(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format(l.T("format.datetime"))
}

// Day formats a date without time.
func (l *locale) Day(t time.Time) string { return t.UTC().Format(l.T("format.date")) }

// languageName is each language's name in itself, for the switch.
func languageName(l string) string {
	switch l {
	case "id":
		return "Bahasa Indonesia"
	case "ru":
		return "Русский"
	}
	return "English"
}

// TLP names a level: the TLP 2.0 labels are the same in every language
// (FIRST publishes them untranslated); the two states that are not levels
// are translated.
func (l *locale) TLP(level int) string {
	switch t := access.TLP(level); t {
	case access.TLPUnmarked:
		return l.T("tlp.unmarked")
	case access.TLPUnresolved:
		return l.T("tlp.unresolved")
	default:
		return t.String()
	}
}
