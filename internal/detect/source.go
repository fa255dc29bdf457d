package detect

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mitra-cert/mitra/internal/pattern"
)

// Input formats.
const (
	FormatAuto     = "auto"     // sniffed per source, then per JSON line
	FormatSTIX     = "stix"     // STIX 2.1 JSON lines
	FormatZeek     = "zeek"     // Zeek TSV (with #fields) or JSON
	FormatSuricata = "suricata" // Suricata EVE JSON
	FormatJSON     = "json"     // generic JSON lines with a Mapping
)

// Formats lists the accepted format names.
var Formats = []string{FormatAuto, FormatSTIX, FormatZeek, FormatSuricata, FormatJSON}

// InputOptions say how a source's lines are decoded.
type InputOptions struct {
	Format  string   // one of Formats; auto when empty
	Mapping *Mapping // for FormatJSON, and for unrecognised JSON in auto
	// Follow keeps reading files (and directories, for new files) as they
	// grow, until the context ends.
	Follow bool
	// PollInterval is how often followed files are checked (250ms).
	PollInterval time.Duration
}

// Source is an input of the detector.
type Source interface {
	// Name is how messages name the source.
	Name() string
	run(ctx context.Context, p *pipeline) error
}

// batchBytes is the size a batch is cut at.
const batchBytes = 64 << 10

// framer cuts one stream of lines into batches, handling the stateful
// parts of the formats (Zeek headers, STIX references) on the way.
type framer struct {
	src  string
	opts InputOptions
	hint zkind
	p    *pipeline

	line   int64 // number of the last line seen
	mode   string
	dec    decoder
	zh     *zeekHeader
	stix   *stixState
	buf    []byte
	ends   []int
	first  int64
	pre    []*pattern.Observation
	prePos []int64
	lane   *lane
	msgs   []msgRef
	msgLn  []int
	segs   []decSeg
	dead   func(seq uint64, line string, reason error)
	// startDec decodes the batch's first lines (segs the others).
	startDec decoder
	// manual: the source flushes itself, at message boundaries (a batch
	// must hold whole messages for their acks).
	manual bool
}

func newFramer(src string, opts InputOptions, p *pipeline) *framer {
	f := &framer{src: src, opts: opts, p: p, hint: zeekKindOf(logName(src))}
	f.setMode(opts.Format)
	return f
}

// logName is "dns" for ".../dns.log", ".../dns.2024-01-01-00-00-00.log.gz".
func logName(path string) string {
	base := filepath.Base(path)
	name, _, _ := strings.Cut(base, ".")
	return name
}

func (f *framer) setMode(format string) {
	f.mode = format
	switch format {
	case FormatSTIX:
		f.stix = newSTIXState()
	case FormatZeek:
		f.dec = zeekJSONDecoder{hint: f.hint}
	case FormatSuricata:
		f.dec = eveDecoder{}
	case FormatJSON:
		if f.opts.Mapping != nil {
			f.dec = f.opts.Mapping
		}
	default:
		f.mode = FormatAuto
		f.dec = &autoDecoder{hint: f.hint, mapping: f.opts.Mapping}
	}
}

// reset forgets headers, for a truncated or replaced file.
func (f *framer) reset() {
	f.zh = nil
	f.setMode(f.opts.Format)
	f.line = 0
}

// addLine takes one line without its end of line.
func (f *framer) addLine(ctx context.Context, line []byte) error {
	f.line++
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if len(line) > 0 && line[0] == '#' && f.mode != FormatSTIX && f.mode != FormatJSON {
		return f.header(ctx, string(line))
	}
	if f.mode == FormatSTIX {
		return f.stixLine(ctx, line)
	}
	if f.mode == FormatAuto && f.zh == nil && len(bytes.TrimSpace(line)) > 0 && looksSTIX(line) {
		f.setMode(FormatSTIX)
		return f.stixLine(ctx, line)
	}
	if f.dec == nil {
		f.bad(string(line), errors.New("--format json needs a --mapping file"))
		return nil
	}
	if len(f.ends) == 0 {
		f.first, f.startDec = f.line, f.dec
	}
	f.buf = append(f.buf, line...)
	f.ends = append(f.ends, len(f.buf))
	if len(f.buf) >= batchBytes && !f.manual {
		return f.flush(ctx)
	}
	return nil
}

func (f *framer) header(ctx context.Context, line string) error {
	if !f.manual {
		if err := f.flush(ctx); err != nil {
			return err
		}
	}
	if f.zh == nil {
		f.zh = newZeekHeader()
	}
	newFields, err := f.zh.directive(line)
	if err != nil {
		f.bad(line, err)
		return nil
	}
	if newFields {
		d, err := newTSVDecoder(f.zh, f.hint)
		if err != nil {
			f.bad(line, err)
			return nil
		}
		f.setDecoder(d)
	}
	return nil
}

// bad counts and logs a line the framer cannot take, and dead-letters it
// when the source has a dead-letter subject.
func (f *framer) bad(line string, err error) {
	f.p.malformed(f.src, f.line, err)
	if f.dead != nil {
		var seq uint64
		if len(f.msgs) > 0 {
			seq = f.msgs[len(f.msgs)-1].seq
		}
		f.dead(seq, line, err)
	}
}

// setDecoder changes the decoder of the lines added next.
func (f *framer) setDecoder(d decoder) {
	if len(f.ends) > 0 {
		f.segs = append(f.segs, decSeg{at: len(f.ends), dec: d})
	}
	f.dec = d
}

func (f *framer) stixLine(ctx context.Context, line []byte) error {
	if len(bytes.TrimSpace(line)) == 0 {
		return nil
	}
	obs, err := f.stix.decode(line)
	if err != nil {
		f.bad(string(line), err)
		return nil
	}
	for _, o := range obs {
		f.pre = append(f.pre, o)
		f.prePos = append(f.prePos, f.line)
	}
	f.p.countEvents(1)
	if len(f.pre) >= 256 && !f.manual {
		return f.flush(ctx)
	}
	return nil
}

// looksSTIX: a JSON object with a STIX type and spec_version, or a bundle.
func looksSTIX(line []byte) bool {
	return bytes.Contains(line, []byte(`"type"`)) && !bytes.Contains(line, []byte(`"event_type"`)) &&
		(bytes.Contains(line, []byte(`"spec_version"`)) || bytes.Contains(line, []byte(`"bundle"`)))
}

// message starts a message of a stream lane: the lines added next are its.
func (f *framer) message(m msgRef) {
	f.msgs = append(f.msgs, m)
	f.msgLn = append(f.msgLn, len(f.ends))
}

// flush hands the batch built so far to the workers.
func (f *framer) flush(ctx context.Context) error {
	if len(f.ends) == 0 && len(f.pre) == 0 && len(f.msgs) == 0 {
		return nil
	}
	dec := f.dec
	if len(f.ends) > 0 {
		dec = f.startDec
	}
	b := &batch{src: f.src, first: f.first, dec: dec, segs: f.segs, pre: f.pre, prePos: f.prePos, lane: f.lane, msgs: f.msgs, msgLine: f.msgLn, dead: f.dead}
	if len(f.ends) > 0 {
		data := string(f.buf)
		b.lines = make([]string, len(f.ends))
		start := 0
		for i, e := range f.ends {
			b.lines[i] = data[start:e]
			start = e
		}
	}
	f.buf, f.ends, f.pre, f.prePos, f.msgs, f.msgLn, f.segs = f.buf[:0], f.ends[:0], nil, nil, nil, nil, nil
	return f.p.submit(ctx, b)
}

// autoDecoder sniffs each JSON line: Suricata EVE, Zeek JSON, else the
// mapping when one is given.
type autoDecoder struct {
	hint    zkind
	mapping *Mapping
}

func (d *autoDecoder) decode(line string, a *arena) (*pattern.Observation, error) {
	switch {
	case strings.Contains(line, `"event_type"`):
		return eveDecoder{}.decode(line, a)
	case strings.Contains(line, `"id.orig_h"`) || strings.Contains(line, `"uid"`) || strings.Contains(line, `"_path"`) || strings.Contains(line, `"fuid"`):
		return zeekJSONDecoder{hint: d.hint}.decode(line, a)
	case d.mapping != nil:
		return d.mapping.decode(line, a)
	}
	if t := strings.TrimSpace(line); t == "" {
		return nil, nil
	}
	return nil, errors.New("unrecognised record: not Suricata EVE, Zeek or STIX (give --format json and --mapping for other JSON)")
}

// lineReader reads lines of any length from r into the framer, handing
// over a batch whenever r has nothing buffered (so that slow streams are
// not held back).
type lineReader struct {
	br   *bufio.Reader
	long []byte
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 256<<10)}
}

// pump reads until EOF. With final, a last line without end of line is
// taken; otherwise it is kept for the next call (the writer may not have
// finished it).
func (lr *lineReader) pump(ctx context.Context, f *framer, final bool) (progress bool, err error) {
	for {
		if lr.br.Buffered() == 0 {
			if err := f.flush(ctx); err != nil {
				return progress, err
			}
			if err := ctx.Err(); err != nil {
				return progress, err
			}
		}
		chunk, err := lr.br.ReadSlice('\n')
		if len(chunk) > 0 {
			progress = true
		}
		switch {
		case err == nil:
			line := chunk[:len(chunk)-1]
			if len(lr.long) > 0 {
				lr.long = append(lr.long, line...)
				line = lr.long
			}
			if e := f.addLine(ctx, line); e != nil {
				return progress, e
			}
			lr.long = lr.long[:0]
		case errors.Is(err, bufio.ErrBufferFull):
			lr.long = append(lr.long, chunk...)
		case errors.Is(err, io.EOF):
			lr.long = append(lr.long, chunk...)
			if final && len(lr.long) > 0 {
				if e := f.addLine(ctx, lr.long); e != nil {
					return progress, e
				}
				lr.long = lr.long[:0]
			}
			return progress, f.flush(ctx)
		default:
			return progress, err
		}
	}
}

// ReaderSource reads a stream (standard input) to its end.
type ReaderSource struct {
	Label string
	R     io.Reader
	Opts  InputOptions
}

// Name implements Source.
func (s *ReaderSource) Name() string { return s.Label }

func (s *ReaderSource) run(ctx context.Context, p *pipeline) error {
	f := newFramer(s.Label, s.Opts, p)
	_, err := newLineReader(s.R).pump(ctx, f, true)
	return err
}

// FileSource reads a file (gzip when its name ends in .gz), or follows it
// with Opts.Follow.
type FileSource struct {
	Path string
	Opts InputOptions
}

// Name implements Source.
func (s *FileSource) Name() string { return s.Path }

func (s *FileSource) run(ctx context.Context, p *pipeline) error {
	if s.Opts.Follow && !strings.HasSuffix(s.Path, ".gz") {
		t := &tailer{opts: s.Opts, p: p}
		return t.loop(ctx, func() ([]string, error) { return []string{s.Path}, nil })
	}
	fh, err := os.Open(s.Path)
	if err != nil {
		return err
	}
	defer fh.Close()
	var r io.Reader = fh
	if strings.HasSuffix(s.Path, ".gz") {
		gz, err := gzip.NewReader(fh)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Path, err)
		}
		defer gz.Close()
		r = gz
	}
	f := newFramer(s.Path, s.Opts, p)
	_, err = newLineReader(r).pump(ctx, f, true)
	return err
}

// DirSource reads every regular file of a directory (names in order; not
// hidden ones), and with Opts.Follow keeps reading them as they grow and
// picks up new files.
type DirSource struct {
	Dir  string
	Opts InputOptions
}

// Name implements Source.
func (s *DirSource) Name() string { return s.Dir }

func (s *DirSource) list() ([]string, error) {
	ents, err := os.ReadDir(s.Dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, filepath.Join(s.Dir, e.Name()))
		}
	}
	slices.Sort(out)
	return out, nil
}

func (s *DirSource) run(ctx context.Context, p *pipeline) error {
	if !s.Opts.Follow {
		files, err := s.list()
		if err != nil {
			return err
		}
		for _, file := range files {
			if err := (&FileSource{Path: file, Opts: s.Opts}).run(ctx, p); err != nil {
				return err
			}
		}
		return nil
	}
	t := &tailer{opts: s.Opts, p: p}
	return t.loop(ctx, s.list)
}

// tailer follows files: new lines of known files, and new files.
type tailer struct {
	opts  InputOptions
	p     *pipeline
	files []*tailed
}

type tailed struct {
	path string
	fh   *os.File
	info os.FileInfo
	off  int64
	lr   *lineReader
	f    *framer
}

func (t *tailer) loop(ctx context.Context, list func() ([]string, error)) error {
	defer func() {
		for _, tf := range t.files {
			tf.fh.Close()
		}
	}()
	every := t.opts.PollInterval
	if every <= 0 {
		every = 250 * time.Millisecond
	}
	for {
		names, err := list()
		if err != nil {
			return err
		}
		for _, name := range names {
			if err := t.open(name); err != nil {
				t.p.log.Warn("cannot follow file", "file", name, "err", err)
			}
		}
		progress := false
		for _, tf := range t.files {
			moved, err := t.read(ctx, tf)
			if err != nil {
				return err
			}
			progress = progress || moved
		}
		if progress {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}

// open starts following name unless it is a file already followed
// (perhaps renamed by log rotation).
func (t *tailer) open(name string) error {
	fi, err := os.Stat(name)
	if err != nil || !fi.Mode().IsRegular() {
		return nil // gone or not a file
	}
	for _, tf := range t.files {
		if os.SameFile(tf.info, fi) {
			return nil
		}
	}
	fh, err := os.Open(name)
	if err != nil {
		return err
	}
	tf := &tailed{path: name, fh: fh, info: fi, f: newFramer(name, t.opts, t.p)}
	tf.lr = newLineReader(fh)
	t.files = append(t.files, tf)
	return nil
}

func (t *tailer) read(ctx context.Context, tf *tailed) (bool, error) {
	if fi, err := tf.fh.Stat(); err == nil && fi.Size() < tf.off {
		// Truncated: start again from the top.
		if _, err := tf.fh.Seek(0, io.SeekStart); err != nil {
			return false, err
		}
		tf.off = 0
		tf.lr = newLineReader(tf.fh)
		tf.f.reset()
	}
	cr := &countingReader{r: tf.fh}
	tf.lr.br.Reset(cr)
	moved, err := tf.lr.pump(ctx, tf.f, false)
	tf.off += cr.n
	return moved, err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
