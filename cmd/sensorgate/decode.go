package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/decoders/script"
)

const decodeUsage = `Usage:
  sensorgate decode (--model NAME | --codec FILE) [--fport N] (--hex H | --base64 B | PAYLOAD)
  sensorgate decode --batch [--model NAME | --codec FILE] < LINES

Decodes a payload with one decoder and prints JSON: the decoder's data, the
normalized samples it maps onto the catalogue (quantity, value, unit,
InfluxDB measurement and field, channel, time), warnings and errors. Use it
to check a decoder against a vendor's examples.

--model names a decoder as the devices file does: a built-in one, or
DIR/<model>.js when --scripts DIR is given (as decoders.scripts in the
daemon). --codec loads one JavaScript codec file instead. The payload is
--hex (0x prefix and spaces allowed), --base64, or a positional argument
read as hex if it is hex, otherwise as base64.

--batch reads JSON lines from stdin, one payload each:
  {"model": "elsys-ers-co2", "fPort": 1, "bytes_hex": "0100e2..."}
  {"codec": "codecs/x.js", "fPort": 2, "bytes_base64": "AQDi..."}
and writes one compact result line per input line, in order, with the line
number and the input echoed; blank lines are skipped. A line may also set
"time" (RFC 3339) and "variables"; other keys are ignored, so the examples
of a vector file can be piped in as they are (jq -c '.examples[]' FILE).
--model or --codec, --fport and --var on the command line apply to lines
that do not set their own. A bad line yields a result with errors and the
batch goes on.

Exits 0 when every payload decoded, 1 when one did not (its "errors" say
why), 2 on a usage error.

Flags:
`

// varsFlag collects repeated -var k=v flags.
type varsFlag map[string]string

func (v varsFlag) String() string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k+"="+v[k])
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

func (v varsFlag) Set(s string) error {
	k, val, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q is not k=v", s)
	}
	v[k] = val
	return nil
}

// decodeOutput is what decode prints for one payload. Data, Normalized,
// Warnings and Errors are never null, so a script can index them.
type decodeOutput struct {
	Line       int                     `json:"line,omitempty"`  // --batch: 1-based input line
	Input      any                     `json:"input,omitempty"` // --batch: the input line, as JSON if it is JSON
	Model      string                  `json:"model,omitempty"`
	Codec      string                  `json:"codec,omitempty"`
	Decoder    string                  `json:"decoder,omitempty"` // "native" or "script <path>"
	FPort      uint8                   `json:"fport"`
	Data       map[string]any          `json:"data"`
	Normalized []decoders.ReportSample `json:"normalized"`
	Warnings   []string                `json:"warnings"`
	Errors     []string                `json:"errors"`
}

// batchLine is one input line of --batch. The JSON keys are those of the
// vector files' examples (fPort, bytes_hex), plus the HTTP API's f_port.
type batchLine struct {
	Model       string            `json:"model"`
	Codec       string            `json:"codec"`
	FPort       *int              `json:"fPort"`
	FPortAPI    *int              `json:"f_port"`
	BytesHex    *string           `json:"bytes_hex"`
	BytesBase64 *string           `json:"bytes_base64"`
	Time        *time.Time        `json:"time"`
	Variables   map[string]string `json:"variables"`
}

// decodeCommand implements "sensorgate decode".
func decodeCommand(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	flags := newFlagSet("decode", stderr)
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), decodeUsage)
		flags.PrintDefaults()
	}
	model := flags.String("model", "", "model id of the decoder: a built-in one, or `NAME`.js in --scripts")
	codec := flags.String("codec", "", "JavaScript codec `FILE` to decode with instead of a model")
	fport := flags.Uint("fport", 1, "LoRaWAN FPort of the uplink")
	hexPayload := flags.String("hex", "", "payload as hex")
	b64Payload := flags.String("base64", "", "payload as base64")
	batch := flags.Bool("batch", false, "read JSON lines from stdin, write one result line each")
	scripts := flags.String("scripts", "", "folder of JavaScript codecs, one <model-id>.js per model (as decoders.scripts)")
	timeout := flags.Duration("timeout", script.DefaultTimeout, "time limit of one codec call (as decoders.timeout)")
	at := flags.String("time", "", "uplink receive time, RFC 3339 (default: now)")
	verbose := flags.Bool("v", false, "show the codecs' console output on stderr")
	vars := varsFlag{}
	flags.Var(vars, "var", "device variable `k=v` passed to the codec (repeatable)")

	positional, err := parseInterspersed(flags, args)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	flags.Visit(func(f *flag.Flag) { set[f.Name] = true })
	usageErr := func(format string, a ...any) error {
		fmt.Fprintf(stderr, "sensorgate decode: "+format+"\n", a...)
		return errUsage
	}
	payloads := len(positional)
	for _, name := range []string{"hex", "base64"} {
		if set[name] {
			payloads++
		}
	}
	switch {
	case *model != "" && *codec != "":
		return usageErr("give --model or --codec, not both")
	case *fport > 255:
		return usageErr("--fport %d: an FPort is 0..255", *fport)
	case *batch && payloads > 0:
		return usageErr("--batch reads its payloads from stdin: no --hex, --base64 or payload argument")
	case *batch:
	case *model == "" && *codec == "":
		return usageErr("--model or --codec is required")
	case len(positional) > 1:
		return usageErr("want one payload argument, got %d", len(positional))
	case payloads != 1:
		return usageErr("give the payload once: --hex, --base64 or an argument (got %d)", payloads)
	}
	now := time.Now().UTC()
	if *at != "" {
		if now, err = time.Parse(time.RFC3339Nano, *at); err != nil {
			return usageErr("--time %q is not RFC 3339", *at)
		}
	}

	level := zerolog.WarnLevel
	if *verbose {
		level = zerolog.DebugLevel
	}
	log := zerolog.New(zerolog.ConsoleWriter{Out: stderr, NoColor: true, PartsExclude: []string{zerolog.TimestampFieldName}}).Level(level)
	r := newResolver(*scripts, script.Options{Timeout: *timeout, Logger: log})
	defaults := decodeJob{model: *model, codec: *codec, in: decoders.Input{FPort: uint8(*fport), Time: now, Variables: vars}}

	if *batch {
		return decodeBatch(r, defaults, stdin, stdout)
	}
	var payload []byte
	switch {
	case set["hex"]:
		payload, err = decodeHex(*hexPayload)
	case set["base64"]:
		payload, err = decodeBase64(*b64Payload)
	default:
		payload, err = parsePayload(positional[0])
	}
	if err != nil {
		return usageErr("%v", err)
	}
	job := defaults
	job.in.Bytes = payload
	out := r.run(job)
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return err
	}
	if len(out.Errors) > 0 {
		return fmt.Errorf("decode: %s", strings.Join(out.Errors, "; "))
	}
	return nil
}

// decodeBatch decodes the JSON lines of in, writing one result line for
// each. A line that cannot be read becomes a result with errors, never the
// end of the batch.
func decodeBatch(r *resolver, defaults decodeJob, in io.Reader, out io.Writer) error {
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	br := bufio.NewReader(in)
	var lines, failed int
	for n := 1; ; n++ {
		raw, readErr := br.ReadBytes('\n')
		if readErr != nil && readErr != io.EOF {
			return fmt.Errorf("decode: read stdin line %d: %w", n, readErr)
		}
		if line := bytes.TrimSpace(raw); len(line) > 0 {
			lines++
			res := r.runLine(defaults, line)
			res.Line = n
			if len(res.Errors) > 0 {
				failed++
			}
			if err := enc.Encode(res); err != nil {
				return err
			}
		}
		if readErr == io.EOF {
			break
		}
	}
	if failed > 0 {
		return fmt.Errorf("decode: %d of %d lines had errors", failed, lines)
	}
	return nil
}

// runLine decodes one --batch line.
func (r *resolver) runLine(defaults decodeJob, line []byte) decodeOutput {
	fail := func(input any, format string, a ...any) decodeOutput {
		out := emptyOutput()
		out.Input = input
		out.Errors = append(out.Errors, fmt.Sprintf(format, a...))
		return out
	}
	if !json.Valid(line) {
		return fail(string(line), "line is not JSON: want {\"model\" or \"codec\", \"fPort\", \"bytes_hex\" or \"bytes_base64\"}")
	}
	input := json.RawMessage(line)
	var bl batchLine
	if err := json.Unmarshal(line, &bl); err != nil {
		return fail(input, "line is not a payload object: %v", err)
	}
	job := defaults
	if bl.Model != "" || bl.Codec != "" {
		job.model, job.codec = bl.Model, bl.Codec
	}
	var problems []string
	switch {
	case job.model != "" && job.codec != "":
		problems = append(problems, "give model or codec, not both")
	case job.model == "" && job.codec == "":
		problems = append(problems, "model or codec is missing (or give --model or --codec)")
	}
	for _, p := range []*int{bl.FPort, bl.FPortAPI} {
		switch {
		case p == nil:
		case *p < 0 || *p > 255:
			problems = append(problems, fmt.Sprintf("fPort %d: an FPort is 0..255", *p))
		default:
			job.in.FPort = uint8(*p)
		}
	}
	var err error
	switch {
	case bl.BytesHex != nil && bl.BytesBase64 != nil:
		problems = append(problems, "give bytes_hex or bytes_base64, not both")
	case bl.BytesHex != nil:
		if job.in.Bytes, err = decodeHex(*bl.BytesHex); err != nil {
			problems = append(problems, "bytes_hex: "+err.Error())
		}
	case bl.BytesBase64 != nil:
		if job.in.Bytes, err = decodeBase64(*bl.BytesBase64); err != nil {
			problems = append(problems, "bytes_base64: "+err.Error())
		}
	default:
		problems = append(problems, "payload is missing: give bytes_hex or bytes_base64")
	}
	if bl.Time != nil {
		job.in.Time = *bl.Time
	}
	if bl.Variables != nil {
		vars := make(map[string]string, len(defaults.in.Variables)+len(bl.Variables))
		for k, v := range defaults.in.Variables {
			vars[k] = v
		}
		for k, v := range bl.Variables {
			vars[k] = v
		}
		job.in.Variables = vars
	}
	if len(problems) > 0 {
		out := fail(input, "%s", problems[0])
		out.Errors = append(out.Errors, problems[1:]...)
		out.Model, out.Codec = job.model, job.codec
		return out
	}
	out := r.run(job)
	out.Input = input
	return out
}

// decodeJob is one payload and the decoder to run it through.
type decodeJob struct {
	model string // a model id, or
	codec string // a codec file
	in    decoders.Input
}

// resolved is a decoder resolver.run found, or why it found none.
type resolved struct {
	dec  decoders.Decoder
	kind string // "native" or "script <path>"
	err  error
}

// resolver finds decoders with the daemon's lookup: a decoders.Registry
// into which a script.Watcher of the scripts folder loads
// <model>.js, replacing a built-in decoder of that model; or one codec
// file. Unlike the daemon it loads only the models asked for. What it
// finds it keeps, so a batch compiles each codec once, and a codec that
// fails to load fails each of its lines with the same message.
type resolver struct {
	reg     *decoders.Registry
	scripts *script.Watcher // nil without --scripts
	dir     string          // the --scripts folder
	opts    script.Options
	loaded  map[string]resolved // by "model:NAME" or "codec:FILE"
}

func newResolver(scripts string, opts script.Options) *resolver {
	r := &resolver{reg: decoders.NewRegistry(), dir: scripts, opts: opts, loaded: map[string]resolved{}}
	if scripts != "" {
		r.scripts = script.NewWatcher(scripts, r.reg, opts)
	}
	return r
}

func (r *resolver) model(name string) resolved {
	key := "model:" + name
	if res, ok := r.loaded[key]; ok {
		return res
	}
	res := r.lookupModel(name)
	r.loaded[key] = res
	return res
}

func (r *resolver) lookupModel(name string) resolved {
	kind := "native"
	if r.scripts != nil {
		path, err := r.scripts.LoadModel(name)
		if err != nil {
			return resolved{err: err}
		}
		if path != "" {
			kind = "script " + path
		}
	}
	if dec, ok := r.reg.Lookup(name); ok {
		return resolved{dec: dec, kind: kind}
	}
	hint := "name a built-in model (" + strings.Join(r.reg.Models(), ", ") + ")"
	if r.dir != "" {
		hint += " or put " + name + ".js in " + r.dir
	} else {
		hint += ", give --scripts DIR holding " + name + ".js, or --codec FILE"
	}
	return resolved{err: fmt.Errorf("no decoder for model %q: %s", name, hint)}
}

func (r *resolver) codec(path string) resolved {
	key := "codec:" + path
	if res, ok := r.loaded[key]; ok {
		return res
	}
	res := resolved{kind: "script " + path}
	res.dec, res.err = script.LoadFile(path, r.opts)
	if res.err != nil {
		// A nil *Codec in the interface would not compare equal to nil.
		res.dec = nil
	}
	r.loaded[key] = res
	return res
}

// run decodes one job and reports it; failures are in Errors.
func (r *resolver) run(job decodeJob) decodeOutput {
	out := emptyOutput()
	out.Model, out.Codec, out.FPort = job.model, job.codec, job.in.FPort
	var res resolved
	if job.codec != "" {
		res = r.codec(job.codec)
	} else {
		res = r.model(job.model)
	}
	if res.err != nil {
		out.Errors = append(out.Errors, res.err.Error())
		return out
	}
	out.Decoder = res.kind
	rep, err := decoders.Explain(res.dec, job.in)
	out.Data, out.Normalized = rep.Data, rep.Samples
	out.Warnings = append(out.Warnings, rep.Warnings...)
	if err != nil {
		out.Errors = append(out.Errors, err.Error())
	}
	return out
}

// emptyOutput has every list present and empty, never null.
func emptyOutput() decodeOutput {
	return decodeOutput{Data: map[string]any{}, Normalized: []decoders.ReportSample{}, Warnings: []string{}, Errors: []string{}}
}

// parseInterspersed parses flags that may come before or after positional
// arguments ("decode -model x 0102" and "decode 0102 -model x"), which the
// flag package alone stops at the first positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// parsePayload reads a positional payload: hex if it is hex, otherwise
// base64.
func parsePayload(s string) ([]byte, error) {
	if b, err := decodeHex(s); err == nil {
		return b, nil
	}
	if b, err := decodeBase64(s); err == nil {
		return b, nil
	}
	return nil, fmt.Errorf("payload %q is neither hex nor base64", s)
}

// decodeHex reads hex with an optional 0x prefix and spaces between bytes.
func decodeHex(s string) ([]byte, error) {
	h := strings.ReplaceAll(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"), " ", "")
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil, fmt.Errorf("%q is not hex: %w", s, err)
	}
	return b, nil
}

// decodeBase64 reads standard or URL-safe base64, padded or not.
func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%q is not base64", s)
}
