package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/decoders/script"
)

const codecsUsage = `Usage: sensorgate codecs list [-scripts DIR]
       sensorgate codecs import -to DIR [-from SRC] [-firmware VERSION] [-force] VENDOR/DEVICE...

list prints every model id a device may name, built-in ("native") or a
JavaScript codec in DIR, which replaces a built-in one of the same id.

Imports the JavaScript codecs of the named devices, one device at a time,
into DIR (the decoders.scripts folder), as DIR/<vendor>-<device>.js: the
device's model id is then "<vendor>-<device>". A running daemon picks the
files up within seconds.

SRC is a local checkout or an http(s) base URL of either
  - The Things Network device repository: vendor/<vendor>/<device>.yaml
    names a codec id per firmware version and region; the codec's
    vendor/<vendor>/<codec-id>.yaml names the .js file and its examples;
  - ChirpStack device profiles: vendors/<vendor>/devices/<device>.toml names
    the codec file in vendors/<vendor>/codecs/, whose examples are
    test_decode_<codec>.json beside it.
Only the files of the named devices are read.

Each codec is compiled and run on its bundled examples; every example is
reported PASS or FAIL. A codec is written only if all its examples pass
(a codec without examples is written, reported as untested); -force writes
it despite failures. A codec that does not compile is never written. The
command exits 1 if any device failed, even with -force.

Flags:
`

// defaultCodecSource is the raw-file view of The Things Network device
// repository, from which single files can be fetched.
const defaultCodecSource = "https://raw.githubusercontent.com/TheThingsNetwork/lorawan-devices/master"

// exampleTime is the recvTime of examples that give none, fixed so a
// self-test gives the same answer every time.
var exampleTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// codecsCommand implements "sensorgate codecs".
func codecsCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, codecsUsage)
		return errUsage
	}
	switch args[0] {
	case "import":
		return codecsImport(ctx, args[1:], stdout, stderr)
	case "list":
		return codecsList(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, codecsUsage)
		return nil
	}
	fmt.Fprintf(stderr, "sensorgate codecs: unknown subcommand %q\n\n%s", args[0], codecsUsage)
	return errUsage
}

func codecsImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := newFlagSet("codecs import", stderr)
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), codecsUsage)
		flags.PrintDefaults()
	}
	to := flags.String("to", "", "folder to write the codecs to, the decoders.scripts folder (required)")
	from := flags.String("from", defaultCodecSource, "device repository: a local folder or an http(s) base URL")
	firmware := flags.String("firmware", "", "firmware version whose codec to import, when a device's versions use different codecs")
	force := flags.Bool("force", false, "write codecs even if some of their examples fail")
	timeout := flags.Duration("timeout", 30*time.Second, "time limit of each download")
	models, err := parseInterspersed(flags, args)
	if err != nil {
		return err
	}
	switch {
	case *to == "":
		fmt.Fprintln(stderr, "sensorgate codecs import: -to is required")
		return errUsage
	case len(models) == 0:
		fmt.Fprintln(stderr, "sensorgate codecs import: name at least one VENDOR/DEVICE")
		return errUsage
	}
	for _, m := range models {
		if _, _, err := splitDeviceModel(m); err != nil {
			fmt.Fprintln(stderr, "sensorgate codecs import:", err)
			return errUsage
		}
	}
	src, err := openCodecSource(*from, *timeout)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*to, 0o755); err != nil {
		return fmt.Errorf("codecs import: %w", err)
	}
	var failed []string
	for _, m := range models {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := importOne(ctx, src, m, *to, *firmware, *force, stdout); err != nil {
			fmt.Fprintf(stdout, "  %v\n", err)
			failed = append(failed, m)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("codecs import: %d of %d devices failed: %s", len(failed), len(models), strings.Join(failed, ", "))
	}
	return nil
}

// deviceSegment is what a vendor or device id may be: they become paths in
// the repository and part of a model id.
var deviceSegment = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// fileSegment is what a codec id or codec file name from a repository file
// may be: one path element, no way out of the vendor folder.
var fileSegment = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

func splitDeviceModel(m string) (vendor, device string, err error) {
	vendor, device, ok := strings.Cut(m, "/")
	if !ok || !deviceSegment.MatchString(vendor) || !deviceSegment.MatchString(device) {
		return "", "", fmt.Errorf("%q is not VENDOR/DEVICE (lower-case ids as the repository spells them, e.g. elsys/ers-co2)", m)
	}
	return vendor, device, nil
}

func checkFileSegment(what, s string) error {
	if !fileSegment.MatchString(s) || strings.Contains(s, "..") {
		return fmt.Errorf("%s %q is not a plain file name in the vendor folder: refusing it", what, s)
	}
	return nil
}

// codecSource reads single files of a device repository.
type codecSource interface {
	// read returns the file at a slash-separated path in the repository,
	// an error wrapping fs.ErrNotExist if there is none.
	read(ctx context.Context, path string) ([]byte, error)
	String() string
}

func openCodecSource(from string, timeout time.Duration) (codecSource, error) {
	if strings.HasPrefix(from, "http://") || strings.HasPrefix(from, "https://") {
		return httpSource{base: strings.TrimSuffix(from, "/"), client: &http.Client{Timeout: timeout}}, nil
	}
	info, err := os.Stat(from)
	if err != nil {
		return nil, fmt.Errorf("codecs import: -from: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("codecs import: -from %s is not a folder", from)
	}
	return dirSource(from), nil
}

type dirSource string

func (d dirSource) read(_ context.Context, path string) ([]byte, error) {
	return os.ReadFile(filepath.Join(string(d), filepath.FromSlash(path)))
}

func (d dirSource) String() string { return string(d) }

type httpSource struct {
	base   string
	client *http.Client
}

// maxCodecFile bounds a download; codecs and their metadata are a few
// kilobytes, rarely a few hundred.
const maxCodecFile = 4 << 20

func (h httpSource) read(ctx context.Context, path string) ([]byte, error) {
	url := h.base + "/" + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%s: %w", url, fs.ErrNotExist)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxCodecFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	if len(b) > maxCodecFile {
		return nil, fmt.Errorf("%s: larger than %d bytes: not a codec file", url, maxCodecFile)
	}
	return b, nil
}

func (h httpSource) String() string { return h.base }

// foundCodec is one device's codec as a repository describes it.
type foundCodec struct {
	origin   string // repository path of the .js file
	codecID  string
	src      []byte
	examples []codecExample
}

// codecExample is one bundled example, in either repository's format.
type codecExample struct {
	name       string
	in         decoders.Input
	data       map[string]any
	errors     []string
	warnings   []string
	normalized []any // nil: the example does not say
}

// importOne imports one VENDOR/DEVICE and reports on stdout. The error is
// the device's failure, already phrased for the report.
func importOne(ctx context.Context, src codecSource, m, dir, firmware string, force bool, stdout io.Writer) error {
	vendor, device, _ := splitDeviceModel(m)
	model := vendor + "-" + device
	found, err := findCodec(ctx, src, vendor, device, firmware)
	if err != nil {
		fmt.Fprintf(stdout, "%s:\n", m)
		return err
	}
	fmt.Fprintf(stdout, "%s: codec %s (%s)\n", m, found.codecID, found.origin)
	file := model + ".js"
	content := append([]byte(fmt.Sprintf("// Imported by 'sensorgate codecs import' from %s: %s.\n", src, found.origin)), found.src...)
	c, err := script.Compile(file, content, script.Options{})
	if err != nil {
		return fmt.Errorf("not written: %w", err)
	}
	fails := 0
	for i, ex := range found.examples {
		if err := checkExample(c, ex); err != nil {
			fails++
			fmt.Fprintf(stdout, "  FAIL  %d %s: %v\n", i+1, ex.name, err)
		} else {
			fmt.Fprintf(stdout, "  PASS  %d %s\n", i+1, ex.name)
		}
	}
	warnStateful(c, found.examples, stdout)
	if fails > 0 && !force {
		return fmt.Errorf("not written: %d of %d examples failed; fix the codec, or use -force to write it anyway", fails, len(found.examples))
	}
	dst := filepath.Join(dir, file)
	if err := writeAtomic(dst, content); err != nil {
		return fmt.Errorf("not written: %w", err)
	}
	switch {
	case fails > 0:
		fmt.Fprintf(stdout, "  wrote %s (model %s) despite %d failed examples (-force)\n", dst, model, fails)
		return fmt.Errorf("%d of %d examples failed", fails, len(found.examples))
	case len(found.examples) == 0:
		fmt.Fprintf(stdout, "  wrote %s (model %s); the codec has no examples: untested\n", dst, model)
	default:
		fmt.Fprintf(stdout, "  wrote %s (model %s)\n", dst, model)
	}
	return nil
}

// findCodec looks the device up as a The Things Network device repository
// entry, then as a ChirpStack device profile.
func findCodec(ctx context.Context, src codecSource, vendor, device, firmware string) (foundCodec, error) {
	ttnPath := "vendor/" + vendor + "/" + device + ".yaml"
	b, err := src.read(ctx, ttnPath)
	if err == nil {
		return ttnCodec(ctx, src, vendor, ttnPath, b, firmware)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return foundCodec{}, err
	}
	csPath := "vendors/" + vendor + "/devices/" + device + ".toml"
	b, err = src.read(ctx, csPath)
	if err == nil {
		return chirpstackCodec(ctx, src, vendor, csPath, b, firmware)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return foundCodec{}, err
	}
	return foundCodec{}, fmt.Errorf("not in %s: neither %s (The Things Network device repository) nor %s (ChirpStack device profiles) exists; check the vendor and device ids", src, ttnPath, csPath)
}

// chooseCodec picks the one codec of a device's firmware versions.
// versions lists (firmware version, codec) pairs in file order.
func chooseCodec(path, firmware string, versions [][2]string) (string, error) {
	var codecs []string
	byCodec := map[string][]string{}
	var all []string
	for _, v := range versions {
		all = append(all, v[0])
		if firmware != "" && v[0] != firmware {
			continue
		}
		if v[1] == "" {
			continue
		}
		if _, seen := byCodec[v[1]]; !seen {
			codecs = append(codecs, v[1])
		}
		if fws := byCodec[v[1]]; len(fws) == 0 || fws[len(fws)-1] != v[0] {
			byCodec[v[1]] = append(fws, v[0])
		}
	}
	switch {
	case len(codecs) == 1:
		return codecs[0], nil
	case len(codecs) == 0 && firmware != "" && !contains(all, firmware):
		return "", fmt.Errorf("%s has no firmware version %q (it has %s)", path, firmware, strings.Join(dedupe(all), ", "))
	case len(codecs) == 0:
		return "", fmt.Errorf("%s names no payload codec: nothing to import", path)
	}
	var parts []string
	for _, c := range codecs {
		parts = append(parts, "firmware "+strings.Join(byCodec[c], ", ")+": "+c)
	}
	return "", fmt.Errorf("%s uses different codecs (%s): choose one with -firmware", path, strings.Join(parts, "; "))
}

// ttnCodec follows a The Things Network device repository entry: device
// file → codec id → codec file → .js file and examples.
func ttnCodec(ctx context.Context, src codecSource, vendor, path string, b []byte, firmware string) (foundCodec, error) {
	var dev struct {
		FirmwareVersions []struct {
			Version  string `yaml:"version"`
			Profiles map[string]struct {
				Codec string `yaml:"codec"`
			} `yaml:"profiles"`
		} `yaml:"firmwareVersions"`
	}
	if err := yaml.Unmarshal(b, &dev); err != nil {
		return foundCodec{}, fmt.Errorf("%s: %w", path, err)
	}
	var versions [][2]string
	for _, fw := range dev.FirmwareVersions {
		regions := make([]string, 0, len(fw.Profiles))
		for r := range fw.Profiles {
			regions = append(regions, r)
		}
		sort.Strings(regions)
		for _, r := range regions {
			versions = append(versions, [2]string{fw.Version, fw.Profiles[r].Codec})
		}
		if len(regions) == 0 {
			versions = append(versions, [2]string{fw.Version, ""})
		}
	}
	codecID, err := chooseCodec(path, firmware, versions)
	if err != nil {
		return foundCodec{}, err
	}
	if err := checkFileSegment("codec id", codecID); err != nil {
		return foundCodec{}, fmt.Errorf("%s: %w", path, err)
	}
	codecPath := "vendor/" + vendor + "/" + codecID + ".yaml"
	cb, err := src.read(ctx, codecPath)
	if err != nil {
		return foundCodec{}, fmt.Errorf("codec %s named by %s: %w", codecID, path, err)
	}
	var cy struct {
		UplinkDecoder *struct {
			FileName string `yaml:"fileName"`
			Examples []struct {
				Description string `yaml:"description"`
				Input       struct {
					FPort    *int   `yaml:"fPort"`
					Bytes    []int  `yaml:"bytes"`
					RecvTime string `yaml:"recvTime"`
				} `yaml:"input"`
				Output struct {
					Data     map[string]any `yaml:"data"`
					Errors   []string       `yaml:"errors"`
					Warnings []string       `yaml:"warnings"`
				} `yaml:"output"`
				NormalizedOutput *struct {
					Data any `yaml:"data"`
				} `yaml:"normalizedOutput"`
			} `yaml:"examples"`
		} `yaml:"uplinkDecoder"`
	}
	if err := yaml.Unmarshal(cb, &cy); err != nil {
		return foundCodec{}, fmt.Errorf("%s: %w", codecPath, err)
	}
	if cy.UplinkDecoder == nil || cy.UplinkDecoder.FileName == "" {
		return foundCodec{}, fmt.Errorf("%s has no uplinkDecoder.fileName: the device has no uplink codec", codecPath)
	}
	if err := checkFileSegment("uplinkDecoder.fileName", cy.UplinkDecoder.FileName); err != nil {
		return foundCodec{}, fmt.Errorf("%s: %w", codecPath, err)
	}
	jsPath := "vendor/" + vendor + "/" + cy.UplinkDecoder.FileName
	js, err := src.read(ctx, jsPath)
	if err != nil {
		return foundCodec{}, fmt.Errorf("codec file named by %s: %w", codecPath, err)
	}
	found := foundCodec{origin: jsPath, codecID: codecID, src: js}
	for i, ex := range cy.UplinkDecoder.Examples {
		in, err := exampleInput(ex.Input.FPort, ex.Input.Bytes, ex.Input.RecvTime, nil)
		if err != nil {
			return foundCodec{}, fmt.Errorf("%s: example %d: %w", codecPath, i+1, err)
		}
		ce := codecExample{name: ex.Description, in: in, data: ex.Output.Data, errors: ex.Output.Errors, warnings: ex.Output.Warnings}
		if no := ex.NormalizedOutput; no != nil && no.Data != nil {
			if list, ok := no.Data.([]any); ok {
				ce.normalized = list
			} else {
				ce.normalized = []any{no.Data}
			}
		}
		found.examples = append(found.examples, ce)
	}
	return found, nil
}

// chirpstackCodec follows a ChirpStack device profile: device file →
// codec file, and its test_decode_<codec>.json examples if there are any.
func chirpstackCodec(ctx context.Context, src codecSource, vendor, path string, b []byte, firmware string) (foundCodec, error) {
	versions, err := chirpstackFirmware(b)
	if err != nil {
		return foundCodec{}, fmt.Errorf("%s: %w", path, err)
	}
	file, err := chooseCodec(path, firmware, versions)
	if err != nil {
		return foundCodec{}, err
	}
	if err := checkFileSegment("codec", file); err != nil {
		return foundCodec{}, fmt.Errorf("%s: %w", path, err)
	}
	jsPath := "vendors/" + vendor + "/codecs/" + file
	js, err := src.read(ctx, jsPath)
	if err != nil {
		return foundCodec{}, fmt.Errorf("codec file named by %s: %w", path, err)
	}
	found := foundCodec{origin: jsPath, codecID: file, src: js}
	testPath := "vendors/" + vendor + "/codecs/test_decode_" + strings.TrimSuffix(file, ".js") + ".json"
	tb, err := src.read(ctx, testPath)
	if errors.Is(err, fs.ErrNotExist) {
		return found, nil
	}
	if err != nil {
		return foundCodec{}, err
	}
	var tests []struct {
		Name  string `json:"name"`
		Input struct {
			Bytes     []int             `json:"bytes"`
			FPort     *int              `json:"fPort"`
			RecvTime  string            `json:"recvTime"`
			Variables map[string]string `json:"variables"`
		} `json:"input"`
		Expected struct {
			Data     map[string]any `json:"data"`
			Errors   []string       `json:"errors"`
			Warnings []string       `json:"warnings"`
		} `json:"expected"`
	}
	if err := json.Unmarshal(tb, &tests); err != nil {
		return foundCodec{}, fmt.Errorf("%s: %w", testPath, err)
	}
	for i, tc := range tests {
		in, err := exampleInput(tc.Input.FPort, tc.Input.Bytes, tc.Input.RecvTime, tc.Input.Variables)
		if err != nil {
			return foundCodec{}, fmt.Errorf("%s: example %d: %w", testPath, i+1, err)
		}
		found.examples = append(found.examples, codecExample{
			name: tc.Name, in: in, data: tc.Expected.Data, errors: tc.Expected.Errors, warnings: tc.Expected.Warnings,
		})
	}
	return found, nil
}

// chirpstackFirmware reads the version and codec of each
// [[device.firmware]] table of a ChirpStack device file. A few lines of
// reading instead of a TOML library: these are flat tables of key =
// "string", and version and codec are all the import needs.
func chirpstackFirmware(b []byte) ([][2]string, error) {
	var out [][2]string
	in := false
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			in = line == "[[device.firmware]]"
			if in {
				out = append(out, [2]string{})
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !in || !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k != "version" && k != "codec" {
			continue
		}
		s, err := tomlString(v)
		if err != nil {
			return nil, fmt.Errorf("line %d: %s: %w", n+1, k, err)
		}
		if k == "version" {
			out[len(out)-1][0] = s
		} else {
			out[len(out)-1][1] = s
		}
	}
	return out, nil
}

// tomlString reads a basic ("…") or literal ('…') TOML string, ignoring a
// trailing comment.
func tomlString(v string) (string, error) {
	if strings.HasPrefix(v, "'") {
		if end := strings.IndexByte(v[1:], '\''); end >= 0 {
			return v[1 : 1+end], nil
		}
	} else if q, err := strconv.QuotedPrefix(v); err == nil && strings.HasPrefix(v, `"`) {
		return strconv.Unquote(q)
	}
	return "", fmt.Errorf("%s is not a string", v)
}

func exampleInput(fport *int, raw []int, recv string, vars map[string]string) (decoders.Input, error) {
	in := decoders.Input{FPort: 1, Time: exampleTime, Variables: vars}
	if fport != nil {
		if *fport < 0 || *fport > 255 {
			return in, fmt.Errorf("fPort %d is not 0..255", *fport)
		}
		in.FPort = uint8(*fport)
	}
	in.Bytes = make([]byte, len(raw))
	for i, v := range raw {
		if v < 0 || v > 255 {
			return in, fmt.Errorf("byte %d is %d, not 0..255", i, v)
		}
		in.Bytes[i] = byte(v)
	}
	if recv != "" {
		t, err := time.Parse(time.RFC3339Nano, recv)
		if err != nil {
			return in, fmt.Errorf("recvTime %q is not RFC 3339", recv)
		}
		in.Time = t
	}
	return in, nil
}

// warnStateful decodes the examples twice over in one reused runtime and
// warns about each example whose output there differs from its output in
// a fresh state (which checkExample saw, and which the daemon gives every
// decode, as The Things Stack and ChirpStack do): the codec keeps state
// between calls, so its author may have tested it in a way that no
// network server runs it.
func warnStateful(c *script.Codec, examples []codecExample, stdout io.Writer) {
	if len(examples) == 0 {
		return
	}
	ins := make([]decoders.Input, 0, 2*len(examples))
	for _, ex := range examples {
		ins = append(ins, ex.in)
	}
	ins = append(ins, ins...)
	outs, errs := c.RunReused(ins)
	for i, ex := range examples {
		fresh := runOutcome(c.Run(ex.in))
		for _, k := range []int{i, len(examples) + i} {
			if reused := runOutcome(outs[k], errs[k]); reused != fresh {
				fmt.Fprintf(stdout, "  WARN  %d %s: codec %s keeps state between calls: decoded after %d other decodes in the same runtime it gives %s, in a fresh one %s; sensorgate decodes every uplink in a fresh state, as The Things Stack and ChirpStack do\n",
					i+1, ex.name, c.File(), k, reused, fresh)
				break
			}
		}
	}
}

// runOutcome renders what Codec.Run returned for comparison and display.
func runOutcome(out script.Output, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return jsonString(map[string]any{"data": out.Data, "warnings": out.Warnings, "normalized": out.Normalized})
}

// checkExample runs one example, compared as the repositories' own test
// harnesses compare (deep equality, numbers as numbers), plus the check
// the daemon makes: normalized output must fit the catalogue.
func checkExample(c *script.Codec, ex codecExample) error {
	out, err := c.Run(ex.in)
	if len(ex.errors) > 0 {
		var rej *script.RejectedError
		switch {
		case errors.As(err, &rej):
			if reflect.DeepEqual(rej.Messages, ex.errors) {
				return nil
			}
			return fmt.Errorf("errors %q, want %q", rej.Messages, ex.errors)
		case err != nil:
			return fmt.Errorf("want errors %q, got: %v", ex.errors, err)
		}
		return fmt.Errorf("want errors %q, got data %s", ex.errors, jsonString(out.Data))
	}
	if err != nil {
		return err
	}
	if got, want := comparableValue(out.Data), comparableValue(ex.data); !reflect.DeepEqual(got, want) {
		return fmt.Errorf("data %s, want %s", jsonString(got), jsonString(want))
	}
	if len(out.Warnings) > 0 || len(ex.warnings) > 0 {
		if !reflect.DeepEqual(out.Warnings, ex.warnings) {
			return fmt.Errorf("warnings %q, want %q", out.Warnings, ex.warnings)
		}
	}
	if ex.normalized != nil {
		got := make([]any, len(out.Normalized))
		for i, m := range out.Normalized {
			got[i] = m
		}
		if g, w := comparableValue(got), comparableValue(ex.normalized); !reflect.DeepEqual(g, w) {
			return fmt.Errorf("normalized %s, want %s", jsonString(g), jsonString(w))
		}
	}
	for _, m := range out.Normalized {
		if _, _, err := decoders.Normalize(m); err != nil {
			return fmt.Errorf("normalized output does not fit the catalogue, the daemon would reject it: %w", err)
		}
	}
	return nil
}

// comparableValue turns every number into float64, so codec output
// compares with examples decoded from YAML (ints) or JSON (floats).
func comparableValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = comparableValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = comparableValue(e)
		}
		return out
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case uint64:
		return float64(x)
	}
	return v
}

func jsonString(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSpace(buf.String())
}

// writeAtomic writes a file by rename, so the daemon's watcher never
// loads a half-written codec (it ignores hidden files like the temporary).
func writeAtomic(path string, content []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func dedupe(list []string) []string {
	var out []string
	for _, e := range list {
		if !contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}
