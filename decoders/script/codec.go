package script

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dop251/goja"
	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/decoders"
)

// Defaults for the zero values of Options.
const (
	// DefaultTimeout bounds one call into a codec. Real codecs decode a
	// payload in well under a millisecond; 100 ms leaves room for a slow
	// box while keeping a looping codec from stalling its feed.
	DefaultTimeout = 100 * time.Millisecond
	// DefaultMaxCallDepth bounds JavaScript recursion. Codecs recurse
	// little, if at all; runaway recursion would otherwise grow the
	// engine's stack until the time limit.
	DefaultMaxCallDepth = 256
	// DefaultPollInterval is how often a Watcher looks for changed files.
	DefaultPollInterval = 2 * time.Second
)

// Options configure codecs and the Watcher. The zero value is usable.
type Options struct {
	// Timeout bounds each call into a codec (decodeUplink,
	// normalizeUplink, Decode) and each run of the file's top level, which
	// sets up the fresh state of every call; zero means DefaultTimeout.
	Timeout time.Duration
	// MaxCallDepth bounds the JavaScript call stack; zero means
	// DefaultMaxCallDepth.
	MaxCallDepth int
	// PoolSize is ignored, kept so that callers setting it still
	// compile: every decode sets up a fresh runtime of its own and
	// discards it afterwards, so no codec state survives a call.
	PoolSize int
	// Mappings lift data keys onto catalogue quantities, by model id, for
	// codecs that have no normalizeUplink. Ignored for codecs that have
	// one: their own normalization is authoritative.
	Mappings map[string][]decoders.Mapping
	// PollInterval is how often a Watcher looks at the folder; zero means
	// DefaultPollInterval.
	PollInterval time.Duration
	// Logger receives load and reload events and, at debug level, the
	// codecs' console output. The zero value logs nothing.
	Logger zerolog.Logger
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxCallDepth <= 0 {
		o.MaxCallDepth = DefaultMaxCallDepth
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	return o
}

// Style is the calling convention a codec file follows.
type Style uint8

// The codec styles, recognised by the function the file defines (checked
// in this order).
const (
	// StyleUplink is decodeUplink(input) of The Things Stack and
	// ChirpStack v4, with optional normalizeUplink.
	StyleUplink Style = iota + 1
	// StyleChirpStackV3 is Decode(fPort, bytes, variables).
	StyleChirpStackV3
	// StyleTTNv2 is Decoder(bytes, fPort).
	StyleTTNv2
)

// String returns the entry point's name, the way errors mention it.
func (s Style) String() string {
	switch s {
	case StyleUplink:
		return "decodeUplink"
	case StyleChirpStackV3:
		return "Decode"
	case StyleTTNv2:
		return "Decoder"
	}
	return fmt.Sprintf("Style(%d)", uint8(s))
}

// Sentinel errors, for errors.Is. Codec failures carry the codec's file
// name and what to do in their message.
var (
	// ErrTimeout: a call ran past Options.Timeout and was interrupted.
	ErrTimeout = errors.New("script: codec timed out")
	// ErrCodec: the codec threw, recursed too deep, returned something
	// that is not a codec result, or crashed the engine.
	ErrCodec = errors.New("script: codec failed")
	// ErrLoad: a codec file cannot be compiled or set up.
	ErrLoad = errors.New("script: codec does not load")
)

// RejectedError is a codec reporting errors for a payload, in the errors
// array of decodeUplink's or normalizeUplink's result. It wraps
// decoders.ErrInvalid: the payload is what the codec refuses.
type RejectedError struct {
	Codec    string   // file name, e.g. "dragino-lht65.js"
	Func     string   // decodeUplink or normalizeUplink
	Messages []string // as the codec wrote them
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("script: codec %s: %s reported errors: %s", e.Codec, e.Func, strings.Join(e.Messages, "; "))
}

// Unwrap returns decoders.ErrInvalid.
func (e *RejectedError) Unwrap() error { return decoders.ErrInvalid }

// callError is a failed call into a codec; kind is the sentinel it
// matches, msg the whole operator-facing message.
type callError struct {
	kind  error
	msg   string
	cause error
}

// loadErr is an ErrLoad with its whole message; cause (may be nil) stays
// reachable for errors.As.
func loadErr(cause error, format string, args ...any) error {
	return &callError{kind: ErrLoad, msg: fmt.Sprintf(format, args...), cause: cause}
}

func (e *callError) Error() string        { return e.msg }
func (e *callError) Is(target error) bool { return target == e.kind }
func (e *callError) Unwrap() error        { return e.cause }

// Output is what a codec itself returned for one payload, before the
// catalogue check.
type Output struct {
	// Data is the decoded object, numbers as float64, arrays as []any,
	// objects as map[string]any, dates as RFC 3339 strings.
	Data map[string]any
	// Warnings are the decodeUplink warnings.
	Warnings []string
	// Normalized is normalizeUplink's data, one object per measurement;
	// nil when the codec has no normalizeUplink.
	Normalized []map[string]any
	// NormalizeWarnings are the normalizeUplink warnings.
	NormalizeWarnings []string
	// Read are the keys of Data, flattened as decoded_<model> names its
	// fields, whose values normalizeUplink read (readtrack.go).
	Read []string
}

// Codec is one compiled codec file. It implements decoders.Decoder and is
// safe for concurrent use.
type Codec struct {
	model string
	file  string // base name, for messages
	// prog is the file compiled as a script, what a fresh runtime runs
	// (program). A codec on locked runtimes keeps only src after Compile
	// and compiles prog again when a call first needs a fresh runtime:
	// with 300 codecs in use a worker held each compiled twice, 9 MiB,
	// and collected garbage all the time under its memory limit
	// (BENCHMARKS.md, issue 22 point 6).
	progMu    sync.Mutex
	prog      *goja.Program
	src       string
	style     Style
	normalize bool
	opts      Options
	maps      []decoders.Mapping
	globals   globalsUsed
	lastLen   atomic.Int32 // values in the last output, see newRecord

	// wrapped and reuse are set when the codec may run on locked
	// runtimes (reuse.go); reuseWhy says why not otherwise.
	wrapped  *goja.Program
	reuse    *reuseState
	reuseWhy string
}

var _ decoders.Decoder = (*Codec)(nil)

// Compile compiles a codec's source and sets up a first runtime, so a
// codec that does not parse, throws at its top level, or defines no entry
// point fails here rather than on the first uplink. name is the file name
// ("<model-id>.js"); the model id is name without ".js".
func Compile(name string, src []byte, opts Options) (*Codec, error) {
	opts = opts.withDefaults()
	model := strings.TrimSuffix(name, ".js")
	maps := opts.Mappings[model]
	for _, m := range maps {
		if _, ok := decoders.LookupQuantity(m.Quantity); !ok {
			return nil, loadErr(nil, "script: codec %s: mapping of %q names %q, which is not in the catalogue: fix the mapping", name, m.Key, m.Quantity)
		}
	}
	layout() // checked here, once, rather than inside a call's time limit
	text := string(src)
	prog, err := goja.Compile(name, text, false)
	if err != nil {
		return nil, loadErr(err, "script: codec %s does not compile: %v: fix the file (it is not used until then)", name, err)
	}
	c := &Codec{
		model:   model,
		file:    name,
		prog:    prog,
		src:     text,
		opts:    opts,
		maps:    maps,
		globals: scanGlobals(string(src)),
	}
	e, err := c.newEngine()
	if err != nil {
		return nil, err
	}
	c.style, c.normalize = e.style, e.normalize != nil
	if c.normalize {
		c.maps = nil
	}
	e.close() // each call sets up its own
	why, parsed, names := checkReusable(name, text)
	switch {
	case why != "":
		c.reuseWhy = why
	case !compilesStrict(name, src):
		c.reuseWhy = "is not valid strict-mode code"
	default:
		if c.wrapped, err = goja.CompileAST(wrapTopLevel(parsed, names, c.style), true); err != nil {
			c.reuseWhy = "does not compile as a function: " + err.Error()
		} else {
			c.reuse = &reuseState{}
			c.prog = nil // until a call needs a fresh runtime (program)
		}
	}
	return c, nil
}

// program returns prog, compiling it again for a codec on locked
// runtimes whose calls had not needed it yet; once compiled it is kept.
func (c *Codec) program() (*goja.Program, error) {
	c.progMu.Lock()
	defer c.progMu.Unlock()
	if c.prog == nil {
		prog, err := goja.Compile(c.file, c.src, false)
		if err != nil { // it compiled in Compile: not expected
			return nil, loadErr(err, "script: codec %s does not compile: %v", c.file, err)
		}
		c.prog = prog
	}
	return c.prog, nil
}

func compilesStrict(name string, src []byte) bool {
	_, err := goja.Compile(name, string(src), true)
	return err == nil
}

// Reusable reports whether the codec's calls run on locked runtimes,
// kept from one call to the next, and if not, why.
func (c *Codec) Reusable() (bool, string) {
	if c.reuse == nil {
		return false, c.reuseWhy
	}
	c.reuse.mu.Lock()
	defer c.reuse.mu.Unlock()
	if c.reuse.off {
		return false, "its calls failed on locked runtimes too often"
	}
	return true, ""
}

// LoadFile reads and compiles one codec file; its model id is the file
// name without ".js".
func LoadFile(path string, opts Options) (*Codec, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("script: read codec: %w", err)
	}
	return Compile(filepath.Base(path), src, opts)
}

// Model is the model id the codec decodes for.
func (c *Codec) Model() string { return c.model }

// File is the codec's file name.
func (c *Codec) File() string { return c.file }

// Style is the codec's calling convention.
func (c *Codec) Style() Style { return c.style }

// HasNormalize reports whether the codec defines normalizeUplink.
func (c *Codec) HasNormalize() bool { return c.normalize }

// Decode runs the codec and maps its output onto the catalogue: the
// normalizeUplink objects through decoders.Normalize (an unknown path is
// an error, an out-of-range value is dropped with a warning), otherwise
// Options.Mappings. The decoded data comes as Result.Record.
func (c *Codec) Decode(in decoders.Input) (decoders.Result, error) {
	rec := c.newRecord()
	out, err := c.exec(in, rec)
	if err != nil {
		rec.Release()
		return decoders.Result{}, err
	}
	res := decoders.Result{Record: rec, Warnings: out.Warnings}
	switch {
	case out.Normalized != nil:
		res.Warnings = append(res.Warnings, out.NormalizeWarnings...)
		for _, m := range out.Normalized {
			s, w, err := decoders.Normalize(m)
			if err != nil {
				rec.Release()
				return decoders.Result{}, fmt.Errorf("script: codec %s: normalizeUplink output rejected: %w", c.file, err)
			}
			res.Samples = append(res.Samples, s...)
			res.Warnings = append(res.Warnings, w...)
		}
		keyRepeats(rec, out.Read, res.Samples)
	case len(c.maps) > 0:
		s, w, err := decoders.Check(rec.ApplyMappings(c.maps))
		if err != nil {
			rec.Release()
			return decoders.Result{}, fmt.Errorf("script: codec %s: mapping: %w", c.file, err)
		}
		res.Samples = s
		res.Warnings = append(res.Warnings, w...)
	}
	return res, nil
}

// Run runs the codec on one payload and returns what it returned,
// converted to Go values, without the catalogue check. Import self-tests
// compare it with a codec's bundled examples.
func (c *Codec) Run(in decoders.Input) (Output, error) {
	rec := c.newRecord()
	defer rec.Release()
	out, err := c.exec(in, rec)
	if err != nil {
		return Output{}, err
	}
	out.Data = rec.Map()
	return out, nil
}

// newRecord takes a record sized for the codec's last output, so a codec
// that returns the same shape every time writes without growing it.
func (c *Codec) newRecord() *decoders.Record {
	return decoders.NewRecord(int(c.lastLen.Load()))
}

// exec runs the codec on a locked runtime where it can, else (and after
// any failure there) on a fresh one, writing its data into rec.
func (c *Codec) exec(in decoders.Input, rec *decoders.Record) (Output, error) {
	if out, err, done := c.execLocked(in, rec); done {
		c.noteLen(rec)
		return out, err
	}
	rec.Reset()
	return c.execFresh(in, rec)
}

// execFresh runs the codec on a fresh runtime, writing its data into rec.
func (c *Codec) execFresh(in decoders.Input, rec *decoders.Record) (Output, error) {
	e, err := c.fresh()
	if err != nil {
		return Output{}, err
	}
	out, err, _ := c.run(e, in, rec)
	e.close() // whatever the call did to it, it is never used again
	c.noteLen(rec)
	return out, err
}

func (c *Codec) noteLen(rec *decoders.Record) {
	if n := int32(rec.Len()); c.lastLen.Load() != n {
		c.lastLen.Store(n) // only on a change: concurrent calls share the word
	}
}

// fresh sets up a runtime for one call. It does so on the call's own
// path, not ahead in a goroutine: with spare runtimes set up by a
// goroutine, back-to-back decodes cost 20–30 % more CPU each (two cores
// busy at once, the runtime made on one and used on the other;
// BENCHMARKS.md), and under load is when CPU counts. It also runs the
// top level when the call does, as The Things Stack and ChirpStack do,
// so a top level that reads the clock reads it then.
func (c *Codec) fresh() (*engine, error) {
	return c.newEngine()
}

// RunReused runs the codec on each input in turn in one runtime, reused
// from one call to the next, the way no decode runs: a codec whose
// outputs here differ from Run's keeps state between calls (a global
// counter, a cache, a last frame). Import self-tests use it to warn
// about such codecs. After a call that breaks the runtime (a timeout, a
// stack overflow) the next input gets a new one.
func (c *Codec) RunReused(ins []decoders.Input) ([]Output, []error) {
	outs, errs := make([]Output, len(ins)), make([]error, len(ins))
	var e *engine
	defer func() {
		if e != nil {
			e.close()
		}
	}()
	for i, in := range ins {
		if e == nil {
			var err error
			if e, err = c.newEngine(); err != nil {
				errs[i] = err
				continue
			}
		}
		rec := decoders.NewRecord(0)
		out, err, broken := c.run(e, in, rec)
		if err == nil {
			out.Data = rec.Map()
		}
		rec.Release()
		outs[i], errs[i] = out, err
		if broken {
			e.close()
			e = nil
		}
	}
	return outs, errs
}
