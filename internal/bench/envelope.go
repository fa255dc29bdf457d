package bench

import "fmt"

// ScanEnvelope reads more, next and the number of objects of an envelope
// with one pass over the bytes and no allocation per object, so that the
// benchmark measures the server rather than the client's JSON decoding.
func ScanEnvelope(body []byte) (more bool, next string, n int, err error) {
	depth := 0
	key := ""
	inObjects := false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; c {
		case '"':
			j := i + 1
			for ; j < len(body) && body[j] != '"'; j++ {
				if body[j] == '\\' {
					j++
				}
			}
			if j >= len(body) {
				return false, "", 0, fmt.Errorf("unterminated string")
			}
			str := string(body[i+1 : j])
			if depth == 1 {
				if key == "next" {
					next = str
					key = ""
				} else if body[j+1] == ':' {
					key = str
				}
			}
			if depth == 2 && inObjects && body[i-1] == '[' || depth == 2 && inObjects && body[i-1] == ',' {
				n++
			}
			i = j
		case '{', '[':
			if depth == 2 && inObjects {
				n++
			}
			if depth == 1 && key == "objects" && c == '[' {
				inObjects = true
			}
			depth++
		case '}', ']':
			depth--
			if depth == 1 {
				inObjects = false
				key = ""
			}
		case 't':
			if depth == 1 && key == "more" {
				more = true
				key = ""
			}
		}
	}
	if depth != 0 {
		return false, "", 0, fmt.Errorf("unbalanced envelope")
	}
	return more, next, n, nil
}
