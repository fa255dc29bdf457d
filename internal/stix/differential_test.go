package stix

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// mutations returns the ATT&CK bundle's objects and, for each, variants
// broken in the ways submitted content is: bytes dropped or replaced
// (invalid JSON, bad escapes, truncated strings) and one property,
// anywhere in the object, removed, nulled, emptied, retyped or
// duplicated. The set is the same on every run.
func mutations(t testing.TB) [][]byte {
	t.Helper()
	objs, err := SplitInput(attackBundle(t))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	var out [][]byte
	// A sample, so that the test stays quick under -race: a quarter of
	// the objects as they are, an eighth mutated.
	for i, o := range objs {
		if i%4 == 0 {
			out = append(out, o)
		}
		if i%8 != 0 {
			continue
		}
		for range 2 {
			out = append(out, mutateBytes(r, o))
		}
		var v any
		if err := json.Unmarshal(o, &v); err != nil {
			t.Fatal(err)
		}
		for range 4 {
			out = append(out, mutateValue(r, o, v))
		}
	}
	return out
}

func mutateBytes(r *rand.Rand, o []byte) []byte {
	b := slices.Clone(o)
	i := r.IntN(len(b))
	switch r.IntN(3) {
	case 0:
		return append(b[:i], b[i+1:]...)
	case 1:
		const chars = `"{}[],:\0a-_. u`
		b[i] = chars[r.IntN(len(chars))]
		return b
	default:
		j := min(len(b), i+1+r.IntN(40))
		return slices.Concat(b[:j], b[i:j], b[j:])
	}
}

// mutateValue changes one property of a deep copy of v (decoded from o)
// and encodes it again; a duplicate key is written into o's bytes.
func mutateValue(r *rand.Rand, o []byte, v any) []byte {
	var cp any
	b, _ := json.Marshal(v)
	json.Unmarshal(b, &cp)
	// Walk down a random path, then change the member reached.
	cur, _ := cp.(map[string]any)
	for {
		keys := make([]string, 0, len(cur))
		for k := range cur {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if len(keys) == 0 {
			break
		}
		k := keys[r.IntN(len(keys))]
		if next := descend(r, cur[k]); next != nil && r.IntN(2) == 0 {
			cur = next
			continue
		}
		switch r.IntN(7) {
		case 0:
			delete(cur, k)
		case 1:
			cur[k] = nil
		case 2:
			cur[k] = []any{}
		case 3:
			cur[k] = map[string]any{}
		case 4:
			cur[k] = json.Number("1.5")
		case 5:
			cur[k] = "2019-13-01T00:00:00Z"
		default:
			// A duplicate key, which encoding/json cannot write.
			i := strings.Index(string(o), `"`+k+`":`)
			if i >= 0 {
				return slices.Concat(o[:i], []byte(`"`+k+`":"x",`), o[i:])
			}
			cur["X-"+k] = true
		}
		break
	}
	out, _ := json.Marshal(cp)
	return out
}

// descend returns the object v is, or an object of the list v is.
func descend(r *rand.Rand, v any) map[string]any {
	switch v := v.(type) {
	case map[string]any:
		return v
	case []any:
		if len(v) > 0 {
			m, _ := v[r.IntN(len(v))].(map[string]any)
			return m
		}
	}
	return nil
}

// FuzzDecodeJSONMatchesReference checks that the decoder decodes any
// input as the one it replaced did.
func FuzzDecodeJSONMatchesReference(f *testing.F) {
	for _, s := range validObjects {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"a":"\ud83d\ude00\ud800x\u00","a":[1,{"b":-0.5e+3,"b":null}]}`))
	f.Add([]byte("{\"a\":\"\xff\",\"b\":\"\\u00e9\"}"))
	f.Fuzz(func(t *testing.T, in []byte) { checkDecodeJSONMatchesReference(t, in) })
}

func checkDecodeJSONMatchesReference(t *testing.T, in []byte) {
	t.Helper()
	got, gotDups, gotErr := decodeJSON(in)
	want, wantDups, wantErr := refDecodeJSON(in)
	if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
		t.Fatalf("%q: error %v, reference %v", in, gotErr, wantErr)
	}
	var se *syntaxError
	if gotErr != nil && !errors.As(gotErr, &se) {
		t.Fatalf("%q: error %T, want a *syntaxError", in, gotErr)
	}
	if !reflect.DeepEqual(got, want) || !slices.Equal(gotDups, wantDups) {
		t.Fatalf("%q: decoded %#v %q, reference %#v %q", in, got, gotDups, want, wantDups)
	}
}

// validationDigest is the SHA-256 of every problem and header Inspect
// gave on mutations(), computed with the package files of commit c80a307
// (before the validator was tuned) and these tests: the tuned validator
// must judge every object alike.
const validationDigest = "70ec67be3082db1196fc9e03fd40f7b617a21ec6cee4bac02808ec41d2ca99a4"

// TestValidateMatchesReference checks that the validator judges the ATT&CK
// objects, and mutations of them, exactly as before it was tuned, and
// that its decoder decodes each exactly as the one it replaced: the same
// values, the same duplicate keys, the same errors.
func TestValidateMatchesReference(t *testing.T) {
	v := Validator{CheckPattern: func(p string) error {
		// A stand-in for the pattern checker, so that the pattern
		// property is checked as on the server.
		if strings.Count(p, "[") != strings.Count(p, "]") {
			return errors.New("unbalanced brackets")
		}
		return nil
	}}
	h := sha256.New()
	n := 0
	inputs := mutations(t)
	for i, in := range inputs {
		checkDecodeJSONMatchesReference(t, in)
		hd, probs := v.Inspect(in)
		for _, p := range probs {
			fmt.Fprintf(h, "%d %s\n", i, p)
			n++
		}
		if hd != nil {
			fmt.Fprintf(h, "%d %q %q %q %v %v %q %q %q %q %q\n", i, hd.ID, hd.Type, hd.SpecVersion, hd.Created, hd.Modified,
				hd.CreatedRaw, hd.ModifiedRaw, hd.CreatedByRef, hd.MarkingRefs, hd.Recipients)
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != validationDigest {
		t.Errorf("validation of %d objects (%d problems) has digest %s, want %s", len(inputs), n, got, validationDigest)
	}
}
