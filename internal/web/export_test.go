package web

import (
	"io/fs"
	"regexp"
	"sort"
)

// Messages returns the catalogue of lang, for the tests.
func Messages(lang string) (map[string]string, error) { return messageIDs(lang) }

// AdminSections returns the administration sections, for the tests.
func AdminSections() []string {
	var out []string
	for _, s := range adminSections {
		out = append(out, s.Name)
	}
	return out
}

// AdminActions returns the administration actions, for the tests.
func AdminActions() []string {
	var out []string
	for a := range adminActions {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

var literalT = regexp.MustCompile(`\.T "([^"]+)"`)

// TemplateMessageIDs returns the message ids the templates name literally.
func TemplateMessageIDs() ([]string, error) {
	seen := map[string]bool{}
	err := fs.WalkDir(templateFiles, "templates", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(templateFiles, path)
		if err != nil {
			return err
		}
		for _, m := range literalT.FindAllStringSubmatch(string(b), -1) {
			seen[m[1]] = true
		}
		return nil
	})
	var out []string
	for id := range seen {
		out = append(out, id)
	}
	sort.Strings(out)
	return out, err
}
