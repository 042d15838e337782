package codecs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/decoders/script"
)

// Importer imports the codecs of devices from one repository into one
// folder, reporting each device's examples as PASS or FAIL.
type Importer struct {
	Source   Source
	Dir      string    // the decoders.scripts folder the codecs are written to
	Firmware string    // firmware version whose codec to import, when a device's versions differ
	Force    bool      // write codecs despite failing examples (the device still counts as failed)
	Report   io.Writer // what happened, device by device
}

// Import imports each VENDOR/DEVICE of models, one after another. A
// device that fails is reported and the others go on; the error names
// every device that failed.
func (im Importer) Import(ctx context.Context, models []string) error {
	for _, m := range models {
		if _, _, err := SplitModel(m); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(im.Dir, 0o755); err != nil {
		return err
	}
	var failed []string
	for _, m := range models {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := im.importOne(ctx, m); err != nil {
			fmt.Fprintf(im.Report, "  %v\n", err)
			failed = append(failed, m)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d devices failed: %s", len(failed), len(models), strings.Join(failed, ", "))
	}
	return nil
}

// deviceSegment is what a vendor or device id may be: they become paths in
// the repository and part of a model id.
var deviceSegment = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// fileSegment is what a codec id or codec file name from a repository file
// may be: one path element, no way out of the vendor folder.
var fileSegment = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// SplitModel splits a VENDOR/DEVICE as the repositories spell them, the
// device's model id then being "<vendor>-<device>".
func SplitModel(m string) (vendor, device string, err error) {
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

// foundCodec is one device's codec as a repository describes it.
type foundCodec struct {
	origin   string // repository path of the .js file
	codecID  string
	src      []byte
	examples []example
}

// example is one bundled example, in either repository's format.
type example struct {
	name       string
	in         decoders.Input
	data       map[string]any
	errors     []string
	warnings   []string
	normalized []any // nil: the example does not say
}

// importOne imports one VENDOR/DEVICE and reports on im.Report. The error
// is the device's failure, already phrased for the report.
func (im Importer) importOne(ctx context.Context, m string) error {
	src, dir, force, stdout := im.Source, im.Dir, im.Force, im.Report
	vendor, device, _ := SplitModel(m)
	model := vendor + "-" + device
	found, err := findCodec(ctx, src, vendor, device, im.Firmware)
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
func findCodec(ctx context.Context, src Source, vendor, device, firmware string) (foundCodec, error) {
	ttnPath := "vendor/" + vendor + "/" + device + ".yaml"
	b, err := src.Read(ctx, ttnPath)
	if err == nil {
		return ttnCodec(ctx, src, vendor, ttnPath, b, firmware)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return foundCodec{}, err
	}
	csPath := "vendors/" + vendor + "/devices/" + device + ".toml"
	b, err = src.Read(ctx, csPath)
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
	case len(codecs) == 0 && firmware != "" && !slices.Contains(all, firmware):
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
func ttnCodec(ctx context.Context, src Source, vendor, path string, b []byte, firmware string) (foundCodec, error) {
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
	cb, err := src.Read(ctx, codecPath)
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
	js, err := src.Read(ctx, jsPath)
	if err != nil {
		return foundCodec{}, fmt.Errorf("codec file named by %s: %w", codecPath, err)
	}
	found := foundCodec{origin: jsPath, codecID: codecID, src: js}
	for i, ex := range cy.UplinkDecoder.Examples {
		in, err := exampleInput(ex.Input.FPort, ex.Input.Bytes, ex.Input.RecvTime, nil)
		if err != nil {
			return foundCodec{}, fmt.Errorf("%s: example %d: %w", codecPath, i+1, err)
		}
		ce := example{name: ex.Description, in: in, data: ex.Output.Data, errors: ex.Output.Errors, warnings: ex.Output.Warnings}
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
func chirpstackCodec(ctx context.Context, src Source, vendor, path string, b []byte, firmware string) (foundCodec, error) {
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
	js, err := src.Read(ctx, jsPath)
	if err != nil {
		return foundCodec{}, fmt.Errorf("codec file named by %s: %w", path, err)
	}
	found := foundCodec{origin: jsPath, codecID: file, src: js}
	testPath := "vendors/" + vendor + "/codecs/test_decode_" + strings.TrimSuffix(file, ".js") + ".json"
	tb, err := src.Read(ctx, testPath)
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
		found.examples = append(found.examples, example{
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

// exampleTime is the recvTime of examples that give none, fixed so a
// self-test gives the same answer every time.
var exampleTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

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

func dedupe(list []string) []string {
	var out []string
	for _, e := range list {
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}
