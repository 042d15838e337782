package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const (
	testCodecs  = "../../testdata/codecs"
	testVectors = "../../testdata/vectors/ttn-core"
)

// runDecode runs the decode command with stdin and returns every line of
// JSON it printed (one for a single payload, one per result for --batch).
func runDecode(t *testing.T, stdin string, args ...string) ([]decodeOutput, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := decodeCommand(args, strings.NewReader(stdin), &stdout, &stderr)
	var outs []decodeOutput
	dec := json.NewDecoder(&stdout)
	for dec.More() {
		var out decodeOutput
		if jerr := dec.Decode(&out); jerr != nil {
			t.Fatalf("output is not JSON: %v\n%s", jerr, stdout.String())
		}
		outs = append(outs, out)
	}
	return outs, stderr.String(), err
}

// sample returns the normalized sample of quantity q.
func sample(out decodeOutput, q string) (s struct {
	Value             any
	Unit, Measurement string
}, ok bool) {
	for _, n := range out.Normalized {
		if n.Quantity == q {
			s.Value, s.Unit, s.Measurement = n.Value, n.Unit, n.Measurement
			return s, true
		}
	}
	return s, false
}

// TestDecodeFlags decodes the Elsys ERS CO2 vector (elsys-ers-co2-codec.json
// example 0) in every form the command takes it.
func TestDecodeFlags(t *testing.T) {
	const (
		hexVec = "0100e202290400270506060308"
		b64Vec = "AQDiAikEACcFBgYDCA=="
	)
	codecFile := filepath.Join(testCodecs, "elsys-ers-co2.js")
	wantData := map[string]any{"temperature": 22.6, "humidity": 41.0, "light": 39.0, "motion": 6.0, "co2": 776.0}
	for _, tc := range []struct {
		name    string
		args    []string
		decoder string
		fport   uint8
	}{
		{"--model --hex", []string{"--model", "elsys-ers-co2", "--hex", hexVec}, "native", 1},
		{"single dash", []string{"-model", "elsys-ers-co2", "-fport", "5", "-hex", "0x" + hexVec[:4] + " " + hexVec[4:]}, "native", 5},
		{"--base64", []string{"--model", "elsys-ers-co2", "--base64", b64Vec}, "native", 1},
		{"unpadded base64", []string{"--model", "elsys-ers-co2", "--base64", strings.TrimRight(b64Vec, "=")}, "native", 1},
		{"positional hex", []string{"--model", "elsys-ers-co2", hexVec}, "native", 1},
		{"positional base64 before flags", []string{b64Vec, "--model", "elsys-ers-co2"}, "native", 1},
		{"--codec", []string{"--codec", codecFile, "--fport", "1", "--hex", hexVec}, "script " + codecFile, 1},
		{"--model from --scripts", []string{"--model", "elsys-ers-co2", "--scripts", testCodecs, "--hex", hexVec}, "script " + codecFile, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			outs, stderr, err := runDecode(t, "", tc.args...)
			if err != nil || len(outs) != 1 {
				t.Fatalf("err %v, %d outputs; stderr %s", err, len(outs), stderr)
			}
			out := outs[0]
			if out.Decoder != tc.decoder || out.FPort != tc.fport || len(out.Errors) != 0 || out.Warnings == nil {
				t.Fatalf("%+v", out)
			}
			if !reflect.DeepEqual(out.Data, wantData) {
				t.Fatalf("data %v, want %v", out.Data, wantData)
			}
			s, ok := sample(out, "air.temperature")
			if !ok || s.Value != 22.6 || s.Unit != "°C" || s.Measurement != "air" {
				t.Fatalf("air.temperature %+v (%v) in %+v", s, ok, out.Normalized)
			}
			if len(out.Normalized) != 5 {
				t.Fatalf("normalized %+v", out.Normalized)
			}
		})
	}
}

func TestDecodeScriptFallbackAndVariables(t *testing.T) {
	// A model without a script in --scripts falls back to the native decoder.
	outs, _, err := runDecode(t, "", "-model", "dragino-lse01", "-scripts", testCodecs, "-fport", "2", "0x0cf200f1 07a5 099b 0202 00")
	if err != nil || outs[0].Decoder != "native" {
		t.Fatalf("%v %+v", err, outs)
	}
	outs, _, err = runDecode(t, "", "--model", "milesight-em310-udl", "--scripts", testCodecs, "--fport", "85",
		"--var", "mount_height_mm=2500", "--var", "site=north", "--hex", "01755c03824408040001")
	if err != nil || outs[0].Data["fill_mm"] != 384.0 {
		t.Fatalf("%v %+v", err, outs)
	}
}

func TestDecodeErrors(t *testing.T) {
	badCodec := filepath.Join(t.TempDir(), "broken.js")
	if err := os.WriteFile(badCodec, []byte("function decodeUplink(input) {"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		usage bool   // exit 2, nothing on stdout; else exit 1 with errors in the JSON
		msg   string // in the error, stderr or the output's errors
	}{
		{"codec rejects port", []string{"-model", "dragino-lht65", "-scripts", testCodecs, "-fport", "42", "cbf60b0d0376010add7fff"}, false, "unknown FPort"},
		{"native rejects port", []string{"--model", "dragino-lht65", "--fport", "42", "--hex", "cbf60b0d0376010add7fff"}, false, "unknown FPort 42"},
		{"truncated", []string{"--model", "dragino-lht65", "--fport", "2", "--hex", "cbf6"}, false, "truncated"},
		{"unknown model", []string{"--model", "no-such-model", "--hex", "00"}, false, `no decoder for model "no-such-model"`},
		{"missing codec", []string{"--codec", filepath.Join(t.TempDir(), "none.js"), "--hex", "00"}, false, "no such file"},
		{"broken codec", []string{"--codec", badCodec, "--hex", "00"}, false, "broken.js"},
		{"broken script", []string{"--model", "broken", "--scripts", filepath.Dir(badCodec), "--hex", "00"}, false, "broken.js"},
		{"no payload", []string{"--model", "elsys-ers"}, true, "give the payload once"},
		{"two payloads", []string{"--model", "elsys-ers", "--hex", "00", "--base64", "AA=="}, true, "give the payload once"},
		{"two positionals", []string{"--model", "elsys-ers", "00", "01"}, true, "want one payload argument, got 2"},
		{"no decoder", []string{"--hex", "00"}, true, "--model or --codec is required"},
		{"model and codec", []string{"--model", "elsys-ers", "--codec", "x.js", "--hex", "00"}, true, "not both"},
		{"bad positional", []string{"--model", "elsys-ers", "not hex!"}, true, "neither hex nor base64"},
		{"bad --hex", []string{"--model", "elsys-ers", "--hex", "0g"}, true, "is not hex"},
		{"bad --base64", []string{"--model", "elsys-ers", "--base64", "!!"}, true, "is not base64"},
		{"fport range", []string{"--model", "elsys-ers", "--fport", "300", "--hex", "00"}, true, "0..255"},
		{"bad var", []string{"--model", "elsys-ers", "--var", "novalue", "--hex", "00"}, true, "not k=v"},
		{"bad time", []string{"--model", "elsys-ers", "--time", "yesterday", "--hex", "00"}, true, "not RFC 3339"},
		{"batch with payload", []string{"--batch", "--model", "elsys-ers", "--hex", "00"}, true, "reads its payloads from stdin"},
		{"unknown flag", []string{"--model", "elsys-ers", "--nope", "--hex", "00"}, true, "not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			outs, stderr, err := runDecode(t, "", tc.args...)
			if err == nil {
				t.Fatalf("no error; output %+v", outs)
			}
			if errors.Is(err, errUsage) != tc.usage {
				t.Fatalf("err %v, want usage error %v", err, tc.usage)
			}
			msg := err.Error() + stderr
			if tc.usage {
				if len(outs) != 0 {
					t.Fatalf("usage error printed %+v", outs)
				}
			} else {
				if len(outs) != 1 || len(outs[0].Errors) == 0 || outs[0].Data == nil || outs[0].Normalized == nil {
					t.Fatalf("want one result with errors, got %+v", outs)
				}
				msg += strings.Join(outs[0].Errors, "\n")
			}
			if !strings.Contains(msg, tc.msg) {
				t.Fatalf("%q lacks %q", msg, tc.msg)
			}
		})
	}
	if _, _, err := runDecode(t, "", "-h"); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
}

// TestDecodeExitCodes: through Main, a rejected payload exits 1 with the
// JSON on stdout, a usage error 2.
func TestDecodeExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"decode", "--model", "elsys-ers-co2", "--hex", "0100e202290400270506060308"}, 0},
		{[]string{"decode", "--model", "dragino-lht65", "--fport", "42", "--hex", "cbf60b0d0376010add7fff"}, 1},
		{[]string{"decode", "--model", "elsys-ers-co2"}, 2},
	} {
		var stdout, stderr bytes.Buffer
		if code := Main(context.Background(), tc.args, &stdout, &stderr); code != tc.code {
			t.Errorf("%v: exit %d, want %d; stderr %s", tc.args, code, tc.code, stderr.String())
		}
		if tc.code != 2 && !json.Valid(stdout.Bytes()) {
			t.Errorf("%v: stdout is not JSON: %s", tc.args, stdout.String())
		}
	}
}

// TestDecodeBatchVectors pipes the examples of external vector files
// (testdata/vectors/ttn-core, written outside this project) into --batch as
// they are, and holds each result line to the example's expected data or
// error. These files have no decoder_quirks correction (see
// decoders/vectors_test.go), so the reference data is exact.
func TestDecodeBatchVectors(t *testing.T) {
	for file, model := range map[string]string{
		"elsys-ers-co2-codec.json":           "elsys-ers-co2",
		"dragino-lht65-codec.json":           "dragino-lht65",
		"milesight-iot-em310-udl-codec.json": "milesight-em310-udl",
		"decentlab-dl-pm-codec.json":         "decentlab-dl-pm",
		"keller-keller-codec.json":           "keller-adt1",
	} {
		t.Run(file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(testVectors, file))
			if err != nil {
				t.Fatal(err)
			}
			var vf struct {
				Examples []json.RawMessage `json:"examples"`
			}
			if err := json.Unmarshal(raw, &vf); err != nil {
				t.Fatal(err)
			}
			var stdin bytes.Buffer
			for _, ex := range vf.Examples {
				if err := json.Compact(&stdin, ex); err != nil {
					t.Fatal(err)
				}
				stdin.WriteString("\n")
			}
			outs, stderr, err := runDecode(t, stdin.String(), "--batch", "--model", model)
			if len(outs) != len(vf.Examples) {
				t.Fatalf("%d results for %d examples; err %v, stderr %s", len(outs), len(vf.Examples), err, stderr)
			}
			failed := 0
			for i, ex := range vf.Examples {
				var want struct {
					FPort    uint8 `json:"fPort"`
					Expected struct {
						Data   map[string]any `json:"data"`
						Errors []string       `json:"errors"`
					} `json:"expected"`
				}
				if err := json.Unmarshal(ex, &want); err != nil {
					t.Fatal(err)
				}
				out := outs[i]
				if out.Line != i+1 || out.Model != model || out.FPort != want.FPort {
					t.Errorf("example %d: line %d model %q fport %d", i, out.Line, out.Model, out.FPort)
				}
				if echo, _ := json.Marshal(out.Input); !bytes.Contains(echo, []byte(`"bytes_hex"`)) {
					t.Errorf("example %d: input echo %s", i, echo)
				}
				if len(want.Expected.Errors) > 0 {
					failed++
					if len(out.Errors) == 0 {
						t.Errorf("example %d: want errors %v, got data %v", i, want.Expected.Errors, out.Data)
					}
					continue
				}
				if len(out.Errors) != 0 || !reflect.DeepEqual(out.Data, want.Expected.Data) {
					t.Errorf("example %d:\n got %v %v\nwant %v", i, out.Data, out.Errors, want.Expected.Data)
				}
			}
			if (err != nil) != (failed > 0) || errors.Is(err, errUsage) {
				t.Fatalf("err %v with %d failing examples", err, failed)
			}
		})
	}
}

// TestDecodeBatchLines mixes good lines with bad ones: each line gets its
// result in order, a bad line never stops the batch, and the exit is 1.
func TestDecodeBatchLines(t *testing.T) {
	codecFile := filepath.Join(testCodecs, "elsys-ers-co2.js")
	lines := []struct {
		in    string
		model string
		errs  string // substring of the result's errors; "" for success
	}{
		{`{"model": "elsys-ers-co2", "fPort": 1, "bytes_hex": "0100e202290400270506060308"}`, "elsys-ers-co2", ""},
		{`not json at all`, "", "line is not JSON"},
		{`{"codec": "` + codecFile + `", "fPort": 1, "bytes_base64": "AQDiAikEACcFBgYDCA=="}`, "", ""},
		{``, "", "skipped"},
		{`{"model": "dragino-lht65", "fPort": 42, "bytes_hex": "cbf60b0d0376010add7fff"}`, "dragino-lht65", "unknown FPort 42"},
		{`{"model": "no-such-model", "fPort": 1, "bytes_hex": "00"}`, "no-such-model", "no decoder for model"},
		{`{"fPort": 1, "bytes_hex": "0100e2"}`, "", "model or codec is missing"},
		{`{"model": "elsys-ers-co2", "codec": "x.js", "bytes_hex": "00"}`, "elsys-ers-co2", "not both"},
		{`{"model": "elsys-ers-co2", "fPort": 300, "bytes_hex": "zz"}`, "elsys-ers-co2", "an FPort is 0..255"},
		{`{"model": "elsys-ers-co2", "bytes_hex": "zz"}`, "elsys-ers-co2", "bytes_hex"},
		{`{"model": "elsys-ers-co2", "fPort": 1}`, "elsys-ers-co2", "payload is missing"},
		{`[1, 2]`, "", "not a payload object"},
		{`{"codec": "` + filepath.Join(testCodecs, "milesight-em310-udl.js") + `", "f_port": 85, "bytes_hex": "01755c03824408040001", "variables": {"mount_height_mm": "2500"}}`, "", ""},
		{`{"model": "dragino-lht65", "fPort": 2, "bytes_hex": "cbf60b0d0376010add7fff", "description": "ignored"}`, "dragino-lht65", ""},
	}
	var stdin strings.Builder
	for _, l := range lines {
		stdin.WriteString(l.in + "\n")
	}
	outs, _, err := runDecode(t, strings.TrimSuffix(stdin.String(), "\n"), "--batch")
	if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), "9 of 13 lines had errors") {
		t.Fatalf("err %v", err)
	}
	i := 0
	for n, l := range lines {
		if l.in == "" {
			continue
		}
		if i >= len(outs) {
			t.Fatalf("only %d results", len(outs))
		}
		out := outs[i]
		i++
		if out.Line != n+1 || out.Model != l.model {
			t.Errorf("line %d: result of line %d, model %q", n+1, out.Line, out.Model)
		}
		if l.errs == "" {
			if len(out.Errors) != 0 || len(out.Data) == 0 || out.Normalized == nil {
				t.Errorf("line %d: %+v", n+1, out)
			}
			continue
		}
		if got := strings.Join(out.Errors, "; "); !strings.Contains(got, l.errs) {
			t.Errorf("line %d: errors %q lack %q", n+1, got, l.errs)
		}
		if out.Data == nil || out.Normalized == nil || out.Warnings == nil || out.Input == nil {
			t.Errorf("line %d: null list in %+v", n+1, out)
		}
	}
	if i != len(outs) {
		t.Fatalf("%d results, want %d", len(outs), i)
	}
	if outs[0].Input.(map[string]any)["bytes_hex"] != "0100e202290400270506060308" {
		t.Errorf("echo %v", outs[0].Input)
	}
	if outs[1].Input != "not json at all" {
		t.Errorf("echo of a bad line %v", outs[1].Input)
	}
	if outs[2].Decoder != "script "+codecFile || outs[2].Data["co2"] != 776.0 {
		t.Errorf("codec line %+v", outs[2])
	}
	if outs[11].Data["fill_mm"] != 384.0 {
		t.Errorf("variables line %+v", outs[11])
	}
}

// TestDecodeBatchDefaults: --codec and --fport on the command line apply to
// lines that set neither; a line's own model wins.
func TestDecodeBatchDefaults(t *testing.T) {
	stdin := `{"bytes_hex": "0100e202290400270506060308"}
{"model": "dragino-lht65", "fPort": 2, "bytes_hex": "cbf60b0d0376010add7fff"}
`
	codecFile := filepath.Join(testCodecs, "elsys-ers-co2.js")
	outs, _, err := runDecode(t, stdin, "--batch", "--codec", codecFile, "--fport", "7")
	if err != nil || len(outs) != 2 {
		t.Fatalf("%v %+v", err, outs)
	}
	if outs[0].Codec != codecFile || outs[0].FPort != 7 || outs[0].Data["co2"] != 776.0 {
		t.Errorf("%+v", outs[0])
	}
	if outs[1].Model != "dragino-lht65" || outs[1].Codec != "" || outs[1].Decoder != "native" {
		t.Errorf("%+v", outs[1])
	}
}

func TestParsePayload(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []byte
	}{
		{"0102ff", []byte{1, 2, 0xff}},
		{"0x01 02", []byte{1, 2}},
		{"AQI=", []byte{1, 2}},
		{"AQI", []byte{1, 2}},
		{"_-8", []byte{0xff, 0xef}},
	} {
		got, err := parsePayload(tc.in)
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("%q: %x %v, want %x", tc.in, got, err, tc.want)
		}
	}
}
