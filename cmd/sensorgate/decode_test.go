package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"reflect"
	"strings"
	"testing"
)

const testCodecs = "../../testdata/codecs"

func runDecode(t *testing.T, args ...string) (decodeOutput, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := decodeCommand(args, &stdout, &stderr)
	var out decodeOutput
	if err == nil {
		if jerr := json.Unmarshal(stdout.Bytes(), &out); jerr != nil {
			t.Fatalf("output is not JSON: %v\n%s", jerr, stdout.String())
		}
	}
	return out, stderr.String(), err
}

func TestDecodeNative(t *testing.T) {
	out, _, err := runDecode(t, "-model", "elsys-ers-co2", "0100e202290400270506060308")
	if err != nil {
		t.Fatal(err)
	}
	if out.Decoder != "native" || out.Model != "elsys-ers-co2" || out.FPort != 1 {
		t.Fatalf("%+v", out)
	}
	want := map[string]any{"temperature": 22.6, "humidity": 41.0, "light": 39.0, "motion": 6.0, "co2": 776.0}
	if !reflect.DeepEqual(out.Data, want) {
		t.Fatalf("data %v", out.Data)
	}
	found := false
	for _, s := range out.Samples {
		if s.Quantity == "air.temperature" {
			found = true
			if s.Value != 22.6 || s.Unit != "°C" || s.Measurement != "air" || s.Field != "temperature" {
				t.Fatalf("sample %+v", s)
			}
		}
	}
	if !found {
		t.Fatalf("no air.temperature sample in %+v", out.Samples)
	}
}

// TestDecodeScript: a codec in -scripts takes precedence, the payload may
// be base64 and come before the flags.
func TestDecodeScript(t *testing.T) {
	out, _, err := runDecode(t, "AQDiAikEACcFBgYDCA==", "-model", "elsys-ers-co2", "-scripts", testCodecs)
	if err != nil {
		t.Fatal(err)
	}
	if out.Decoder != "script "+testCodecs+"/elsys-ers-co2.js" {
		t.Fatalf("decoder %q", out.Decoder)
	}
	if out.Data["co2"] != 776.0 || len(out.Samples) != 5 {
		t.Fatalf("%+v", out)
	}
	// A model without a script falls back to the native decoder.
	out, _, err = runDecode(t, "-model", "dragino-lse01", "-scripts", testCodecs, "-fport", "2", "0x0cf200f1 07a5 099b 0202 00")
	if err != nil {
		t.Fatal(err)
	}
	if out.Decoder != "native" {
		t.Fatalf("decoder %q", out.Decoder)
	}
}

func TestDecodeVariables(t *testing.T) {
	out, _, err := runDecode(t, "-model", "milesight-em310-udl", "-scripts", testCodecs, "-fport", "85",
		"-var", "mount_height_mm=2500", "-var", "site=north", "01755c03824408040001")
	if err != nil {
		t.Fatal(err)
	}
	if out.Data["fill_mm"] != 384.0 {
		t.Fatalf("data %v", out.Data)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		usage bool
		msg   string
	}{
		{[]string{"-model", "dragino-lht65", "-scripts", testCodecs, "-fport", "42", "cbf60b0d0376010add7fff"}, false, "unknown FPort"},
		{[]string{"-model", "dragino-lht65", "-fport", "42", "cbf60b0d0376010add7fff"}, false, "unknown FPort 42"},
		{[]string{"-model", "no-such-model", "00"}, false, `no decoder for model "no-such-model"`},
		{[]string{"-model", "elsys-ers"}, true, "want one payload argument, got 0"},
		{[]string{"00"}, true, "-model is required"},
		{[]string{"-model", "elsys-ers", "not hex!"}, true, "neither hex nor base64"},
		{[]string{"-model", "elsys-ers", "-fport", "300", "00"}, true, "0..255"},
		{[]string{"-model", "elsys-ers", "-var", "novalue", "00"}, true, "not k=v"},
	} {
		_, stderr, err := runDecode(t, tc.args...)
		if err == nil {
			t.Fatalf("%v: no error", tc.args)
		}
		if errors.Is(err, errUsage) != tc.usage {
			t.Fatalf("%v: err %v, usage error %v", tc.args, err, tc.usage)
		}
		if msg := err.Error() + stderr; !strings.Contains(msg, tc.msg) {
			t.Fatalf("%v: %q lacks %q", tc.args, msg, tc.msg)
		}
	}
	if _, _, err := runDecode(t, "-h"); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
}

func TestParsePayload(t *testing.T) {
	for _, tc := range []struct {
		in    string
		force bool
		want  []byte
	}{
		{"0102ff", false, []byte{1, 2, 0xff}},
		{"0x01 02", false, []byte{1, 2}},
		{"AQI=", false, []byte{1, 2}},
		{"AQI", false, []byte{1, 2}},
		{"abcd", true, []byte{0x69, 0xb7, 0x1d}},
	} {
		got, err := parsePayload(tc.in, tc.force)
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("%q: %x %v, want %x", tc.in, got, err, tc.want)
		}
	}
}
