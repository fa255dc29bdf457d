package sqlstore

import (
	"reflect"
	"testing"
)

func TestCopyConvert(t *testing.T) {
	for _, c := range []struct {
		typ     string
		in, out any
	}{
		{"boolean", int64(1), true},
		{"boolean", int64(0), false},
		{"INTEGER", true, int64(1)},
		{"bigint", int32(7), int64(7)},
		{"bytea", "ab", []byte("ab")},
		{"BLOB", []byte{0, 255}, []byte{0, 255}},
		{"text[]", `["a","b"]`, []string{"a", "b"}},
		{"text[]", `[]`, []string{}},
		{"TEXT", []any{"a", "b"}, `["a","b"]`},
		{"jsonb", map[string]any{"k": float64(1)}, `{"k":1}`},
		{"TEXT", nil, nil},
		{"double precision", int64(2), float64(2)},
	} {
		cl, err := classify(c.typ)
		if err != nil {
			t.Fatal(err)
		}
		got, err := convert(c.in, cl)
		if err != nil || !reflect.DeepEqual(got, c.out) {
			t.Errorf("%s ← %#v: %#v, %v; want %#v", c.typ, c.in, got, err, c.out)
		}
	}
	if _, err := classify("tsvector"); err == nil {
		t.Error("an unknown type was classified")
	}
	if cl, _ := classify("boolean"); func() error { _, err := convert("yes", cl); return err }() == nil {
		t.Error("text converted to a boolean")
	}
}

func TestCopyRefusesRenumberedKeys(t *testing.T) {
	for _, tb := range []Table{
		{Name: "notes", Columns: []Column{{Name: "id", Key: 1}, {Name: "cid"}}},
		{Name: "notes", Columns: []Column{{Name: "id", Key: 1}, {Name: "object"}}, refs: []string{"objects"}},
	} {
		if err := checkRenumbered(&tb); err == nil {
			t.Errorf("%+v was accepted", tb)
		}
	}
	ok := Table{Name: "notes", Columns: []Column{{Name: "id", Key: 1}, {Name: "collection"}}, refs: []string{"peers"}}
	if err := checkRenumbered(&ok); err != nil {
		t.Error(err)
	}
}
