package pattern

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxJSONLLine is the longest input line MatchJSONL accepts.
const MaxJSONLLine = 64 << 20

type jsonlInput struct {
	Pattern  *string         `json:"pattern"`
	Observed json.RawMessage `json:"observed"`
}

type jsonlOutput struct {
	Valid   bool    `json:"valid"`
	Matched bool    `json:"matched"`
	Error   *string `json:"error"`
}

// MatchJSONL implements `mitra pattern match --jsonl`. Each non-blank line
// of r is a JSON object {"pattern": "...", "observed": [...]}, where
// observed is a list of STIX 2.1 objects: observed-data SDOs with
// object_refs plus the SCOs they reference, or observed-data with the
// deprecated embedded "objects" dictionary. For each such line one line
// {"valid": bool, "matched": bool, "error": null|"..."} is written to w.
//
// valid is false, with the reason in error, when the line cannot be
// processed: malformed JSON, a missing pattern, an invalid pattern (the
// error then starts with "position N: "), or malformed observed data.
// Processing goes on with the next line. A valid line that hits the
// evaluation budget reports valid true, matched false and the error.
// MatchJSONL returns early only on a read or write error or when ctx is
// done.
func MatchJSONL(ctx context.Context, r io.Reader, w io.Writer) error {
	br := bufio.NewReaderSize(r, 64<<10)
	bw := bufio.NewWriter(w)
	lineNo := 0
	for {
		if err := ctx.Err(); err != nil {
			bw.Flush()
			return err
		}
		line, tooLong, err := readLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			bw.Flush()
			return err
		}
		atEOF := errors.Is(err, io.EOF)
		if len(bytes.TrimSpace(line)) > 0 || tooLong {
			lineNo++
			var out jsonlOutput
			if tooLong {
				out = failed(fmt.Sprintf("line %d: longer than %d bytes", lineNo, MaxJSONLLine))
			} else {
				out = matchLine(lineNo, line)
			}
			b, _ := json.Marshal(out)
			b = append(b, '\n')
			if _, werr := bw.Write(b); werr != nil {
				return werr
			}
			// flush per line so an interactive caller sees each answer
			if werr := bw.Flush(); werr != nil {
				return werr
			}
		}
		if atEOF {
			return bw.Flush()
		}
	}
}

// readLine reads one line; a line over MaxJSONLLine is drained and
// reported as tooLong.
func readLine(br *bufio.Reader) (line []byte, tooLong bool, err error) {
	for {
		chunk, isPrefix, err := br.ReadLine()
		if !tooLong {
			if len(line)+len(chunk) > MaxJSONLLine {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if err != nil || !isPrefix {
			return line, tooLong, err
		}
	}
}

func failed(msg string) jsonlOutput { return jsonlOutput{Valid: false, Error: &msg} }

func matchLine(lineNo int, line []byte) jsonlOutput {
	var in jsonlInput
	d := json.NewDecoder(bytes.NewReader(line))
	if err := d.Decode(&in); err != nil {
		return failed(fmt.Sprintf("line %d: invalid JSON: %v", lineNo, err))
	}
	if d.More() {
		return failed(fmt.Sprintf("line %d: invalid JSON: trailing data after the object", lineNo))
	}
	if in.Pattern == nil {
		return failed(fmt.Sprintf("line %d: missing \"pattern\"", lineNo))
	}
	p, err := Parse(*in.Pattern)
	if err != nil {
		return failed(err.Error())
	}
	var obs []*Observation
	if len(in.Observed) > 0 && string(in.Observed) != "null" {
		obs, err = ObservationsFromJSON(in.Observed)
		if err != nil {
			return failed(fmt.Sprintf("line %d: %v", lineNo, err))
		}
	}
	res, err := p.Evaluate(obs)
	if err != nil {
		msg := err.Error()
		return jsonlOutput{Valid: true, Error: &msg}
	}
	return jsonlOutput{Valid: true, Matched: res.Matched}
}
