package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/decoders/script"
)

const decodeUsage = `Usage: sensorgate decode -model ID [-fport N] [-scripts DIR] [-var k=v ...] HEX|BASE64

Decodes one payload with the decoder the daemon would use for the model and
prints the result as JSON: the decoder's data, the samples it maps onto the
catalogue (quantity, unit, InfluxDB measurement and field) and warnings.
A codec DIR/<model>.js (decoders.scripts) takes precedence over the built-in
decoder, as in the daemon. The payload is read as hex if it is hex (an
optional 0x prefix, spaces allowed), otherwise as base64; -base64 forces
base64. Exits 1 if the decoder rejects the payload.

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

// decodeOutput is what decode prints.
type decodeOutput struct {
	Model    string         `json:"model"`
	Decoder  string         `json:"decoder"` // "native" or "script <path>"
	FPort    uint8          `json:"fport"`
	Data     map[string]any `json:"data"`
	Samples  []sampleOutput `json:"samples"`
	Warnings []string       `json:"warnings"`
}

type sampleOutput struct {
	Quantity    string `json:"quantity"`
	Value       any    `json:"value"`
	Unit        string `json:"unit,omitempty"`
	Measurement string `json:"measurement"`
	Field       string `json:"field"`
	Channel     string `json:"channel,omitempty"`
	Time        string `json:"time,omitempty"`
}

// decodeCommand implements "sensorgate decode".
func decodeCommand(args []string, stdout, stderr io.Writer) error {
	flags := newFlagSet("decode", stderr)
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), decodeUsage)
		flags.PrintDefaults()
	}
	model := flags.String("model", "", "model id of the decoder (required)")
	fport := flags.Uint("fport", 1, "LoRaWAN FPort of the uplink")
	scripts := flags.String("scripts", "", "folder of JavaScript codecs, one <model-id>.js per model (as decoders.scripts)")
	timeout := flags.Duration("timeout", script.DefaultTimeout, "time limit of one codec call (as decoders.timeout)")
	at := flags.String("time", "", "uplink receive time, RFC 3339 (default: now)")
	forceB64 := flags.Bool("base64", false, "read the payload as base64 even if it looks like hex")
	verbose := flags.Bool("v", false, "show the codec's console output")
	vars := varsFlag{}
	flags.Var(vars, "var", "device variable `k=v` passed to the codec (repeatable)")

	positional, err := parseInterspersed(flags, args)
	if err != nil {
		return err
	}
	switch {
	case len(positional) != 1:
		fmt.Fprintf(stderr, "sensorgate decode: want one payload argument, got %d\n", len(positional))
		return errUsage
	case *model == "":
		fmt.Fprintln(stderr, "sensorgate decode: -model is required")
		return errUsage
	case *fport > 255:
		fmt.Fprintf(stderr, "sensorgate decode: -fport %d: an FPort is 0..255\n", *fport)
		return errUsage
	}
	payload, err := parsePayload(positional[0], *forceB64)
	if err != nil {
		fmt.Fprintln(stderr, "sensorgate decode:", err)
		return errUsage
	}
	in := decoders.Input{FPort: uint8(*fport), Bytes: payload, Time: time.Now().UTC(), Variables: vars}
	if *at != "" {
		if in.Time, err = time.Parse(time.RFC3339Nano, *at); err != nil {
			fmt.Fprintf(stderr, "sensorgate decode: -time %q is not RFC 3339\n", *at)
			return errUsage
		}
	}

	level := zerolog.WarnLevel
	if *verbose {
		level = zerolog.DebugLevel
	}
	log := zerolog.New(zerolog.ConsoleWriter{Out: stderr, NoColor: true, PartsExclude: []string{zerolog.TimestampFieldName}}).Level(level)
	reg := decoders.NewRegistry()
	kind := "native"
	if *scripts != "" {
		path := filepath.Join(*scripts, *model+".js")
		c, err := script.LoadFile(path, script.Options{Timeout: *timeout, Logger: log})
		switch {
		case err == nil:
			reg.Set(*model, c)
			kind = "script " + path
		case errors.Is(err, fs.ErrNotExist):
			// No script for this model: the built-in decoder, as in the daemon.
		default:
			return err
		}
	}
	dec, ok := reg.Lookup(*model)
	if !ok {
		return fmt.Errorf("decode: no decoder for model %q: name a built-in model (%s) or put %s.js in -scripts", *model, strings.Join(reg.Models(), ", "), *model)
	}
	res, err := dec.Decode(in)
	if err != nil {
		return fmt.Errorf("decode: model %s: %w", *model, err)
	}
	// The pipeline checks samples against the catalogue before writing.
	samples, warnings, err := decoders.Check(res.Samples)
	if err != nil {
		return fmt.Errorf("decode: model %s: %w", *model, err)
	}
	out := decodeOutput{
		Model: *model, Decoder: kind, FPort: in.FPort, Data: res.Data,
		Samples: make([]sampleOutput, 0, len(samples)), Warnings: append(res.Warnings, warnings...),
	}
	if out.Data == nil {
		out.Data = map[string]any{}
	}
	if out.Warnings == nil {
		out.Warnings = []string{}
	}
	for _, s := range samples {
		q, _ := decoders.LookupQuantity(s.Quantity) // Check vetted the path
		so := sampleOutput{Quantity: s.Quantity, Value: s.Value, Unit: q.Unit, Measurement: q.Measurement, Field: q.Field, Channel: s.Channel}
		if !s.Time.IsZero() {
			so.Time = s.Time.UTC().Format(time.RFC3339Nano)
		}
		out.Samples = append(out.Samples, so)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
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

// parsePayload reads a payload given as hex or base64.
func parsePayload(s string, forceBase64 bool) ([]byte, error) {
	if !forceBase64 {
		h := strings.ReplaceAll(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"), " ", "")
		if b, err := hex.DecodeString(h); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("payload %q is neither hex nor base64", s)
}
