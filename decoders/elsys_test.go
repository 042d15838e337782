package decoders

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"testing"
)

// Helpers shared by the vendor decoder tests (Elsys, Milesight, Decentlab,
// Dragino).

// vendorPayloads returns the fPort and bytes of every example in a
// testdata/vectors/ttn-core file.
func vendorPayloads(t testing.TB, file string) (ports []uint8, payloads [][]byte) {
	t.Helper()
	raw, err := os.ReadFile("../testdata/vectors/ttn-core/" + file)
	if err != nil {
		t.Fatal(err)
	}
	var vf ttnVectorFile
	if err := json.Unmarshal(raw, &vf); err != nil {
		t.Fatal(err)
	}
	for _, ex := range vf.Examples {
		b, err := hex.DecodeString(ex.BytesHex)
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, ex.FPort)
		payloads = append(payloads, b)
	}
	return ports, payloads
}

// vendorDecode asserts the decoder contract on any input: an error wraps
// ErrTruncated or ErrInvalid; without one, the samples fit the catalogue.
func vendorDecode(t testing.TB, model string, in Input) (Result, error) {
	t.Helper()
	res, err := builtin[model].Decode(in)
	if err != nil {
		if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrInvalid) {
			t.Fatalf("%s % x: error wraps neither ErrTruncated nor ErrInvalid: %v", model, in.Bytes, err)
		}
		return res, err
	}
	vecCheckSamples(t, res)
	return res, nil
}

// decodeCase decodes a table case's hex payload and checks its error
// against wantErr (any error must wrap ErrTruncated or ErrInvalid, and
// samples must fit the catalogue). ok is false when the case is over: the
// expected error came.
func decodeCase(t *testing.T, dec Decoder, fport uint8, payloadHex string, wantErr error) (res Result, ok bool) {
	t.Helper()
	res, err := dec.Decode(Input{FPort: fport, Bytes: vecHex(t, payloadHex)})
	if err != nil && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrInvalid) {
		t.Fatalf("%s: error wraps neither ErrTruncated nor ErrInvalid: %v", payloadHex, err)
	}
	if wantErr != nil {
		if !errors.Is(err, wantErr) {
			t.Fatalf("got %v, want %v", err, wantErr)
		}
		return res, false
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Check(res.Samples); err != nil {
		t.Fatalf("%s: samples do not fit the catalogue: %v", payloadHex, err)
	}
	return res, true
}

// vendorPrefixes decodes every prefix of every example of a vector file:
// each must decode or fail cleanly, never panic.
func vendorPrefixes(t *testing.T, model, file string) {
	t.Helper()
	ports, payloads := vendorPayloads(t, file)
	for i, b := range payloads {
		for n := 0; n <= len(b); n++ {
			vendorDecode(t, model, Input{FPort: ports[i], Bytes: b[:n]})
		}
	}
}

func TestElsys(t *testing.T) {
	for _, tc := range []struct {
		name     string
		model    string
		hex      string
		data     map[string]any
		samples  []Sample
		warnings int
		err      error
	}{
		{
			name: "ERS CO2 vector", model: "elsys-ers-co2", hex: "0100e202290400270506060308",
			data: map[string]any{"temperature": 22.6, "humidity": 41.0, "light": 39.0, "motion": 6.0, "co2": 776.0},
			samples: []Sample{
				{Quantity: "air.temperature", Value: NumberVal(22.6)},
				{Quantity: "air.relativeHumidity", Value: NumberVal(41.0)},
				{Quantity: "air.lightIntensity", Value: NumberVal(39.0)},
				{Quantity: "action.motion.count", Value: NumberVal(6.0)},
				{Quantity: "air.co2", Value: NumberVal(776.0)},
			},
		},
		{
			name: "ERS Sound: negative temperature, battery, sound", model: "elsys-ers-sound", hex: "01ff9c070e10153d2e",
			data: map[string]any{"temperature": -10.0, "vdd": 3600.0, "soundPeak": 61.0, "soundAvg": 46.0},
			samples: []Sample{
				{Quantity: "air.temperature", Value: NumberVal(-10.0)},
				{Quantity: "battery", Value: NumberVal(3.6)},
				{Quantity: "sound.laeq", Value: NumberVal(46.0)},
				{Quantity: "sound.lamax", Value: NumberVal(61.0)},
			},
		},
		{
			name: "ELT-2: distance, two absolute pulse counters above 2^31", model: "elsys-elt-2", hex: "0e04d20b8000000117000000070c00fa",
			data: map[string]any{"distance": 1234.0, "pulseAbs": 2147483649.0, "pulseAbs2": 7.0, "externalTemperature": 25.0},
			samples: []Sample{
				{Quantity: "level.distance", Value: NumberVal(1.234)},
				{Quantity: "metering.pulse.count", Value: NumberVal(2147483649.0), Channel: "1"},
				{Quantity: "metering.pulse.count", Value: NumberVal(7.0), Channel: "2"},
			},
		},
		{
			name: "two external temperature 2 probes become a list", model: "elsys-elt", hex: "1900641900c8190064",
			data: map[string]any{"externalTemperature2": []any{10.0, 20.0, 10.0}},
		},
		{
			name: "external temperature 2 probes between other types", model: "elsys-elt", hex: "1900640100e21900c8",
			data:    map[string]any{"externalTemperature2": []any{10.0, 20.0}, "temperature": 22.6},
			samples: []Sample{{Quantity: "air.temperature", Value: NumberVal(22.6)}},
		},
		{
			name: "external temperature 2 after an unknown type is not read", model: "elsys-elt", hex: "1900643d1900c8",
			data: map[string]any{"externalTemperature2": 10.0}, warnings: 1,
		},
		{
			name: "accelerometer, IR temperature, analog uV, TVOC", model: "elsys-ers-voc", hex: "0301ff3f1000c8ff9c1bfffffffe1c0190",
			data: map[string]any{
				"x": 1.0, "y": -1.0, "z": 63.0,
				"irInternalTemperature": 20.0, "irExternalTemperature": -10.0,
				"analogUv": -2.0, "tvoc": 400.0,
			},
			samples: []Sample{{Quantity: "air.tvoc", Value: NumberVal(400.0)}},
		},
		{
			name: "unknown type after data: stop with a warning", model: "elsys-ers", hex: "0100e23d01020304",
			data:     map[string]any{"temperature": 22.6},
			samples:  []Sample{{Quantity: "air.temperature", Value: NumberVal(22.6)}},
			warnings: 1,
		},
		{name: "unknown first type", model: "elsys-ers", hex: "3d01020304", err: ErrInvalid},
		{name: "truncated temperature", model: "elsys-ers", hex: "0100e201", err: ErrTruncated},
		{name: "truncated grid-eye", model: "elsys-ers-eye", hex: "1314" + "00", err: ErrTruncated},
		{name: "empty", model: "elsys-ers", hex: "", err: ErrTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, ok := decodeCase(t, builtin[tc.model], 5, tc.hex, tc.err)
			if !ok {
				return
			}
			if !reflect.DeepEqual(res.DataMap(), tc.data) {
				t.Errorf("data: got %v, want %v", res.DataMap(), tc.data)
			}
			if !reflect.DeepEqual(withoutKeys(res.Samples), tc.samples) {
				t.Errorf("samples: got %v, want %v", res.Samples, tc.samples)
			}
			if len(res.Warnings) != tc.warnings {
				t.Errorf("warnings: got %q, want %d", res.Warnings, tc.warnings)
			}
		})
	}
}

func TestElsysGridEye(t *testing.T) {
	b := make([]byte, 66)
	b[0], b[1] = 0x13, 21 // reference 21 °C
	for j := 0; j < 64; j++ {
		b[2+j] = byte(j)
	}
	res, err := vendorDecode(t, "elsys-ers-eye", Input{Bytes: b})
	if err != nil {
		t.Fatal(err)
	}
	px, ok := res.DataMap()["grideye"].([]any)
	if !ok || len(px) != 64 || px[0] != 21.0 || px[63] != 21+63.0/10 {
		t.Fatalf("grideye: %v", res.DataMap()["grideye"])
	}
}

func TestElsysTruncation(t *testing.T) {
	vendorPrefixes(t, "elsys-ers-co2", "elsys-ers-co2-codec.json")
}

func FuzzElsys(f *testing.F) {
	// Seeds: the vectors, and testdata/fuzz/FuzzElsys, made from them and
	// the table tests above.
	vecSeedBytes(f, "elsys-ers-co2-codec.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		vendorDecode(t, "elsys-ers", Input{FPort: 5, Bytes: b})
	})
}

// BenchmarkElsys decodes an ERS CO2 uplink (temperature, humidity, light,
// motion, CO2, battery).
func BenchmarkElsys(b *testing.B) {
	payload, _ := hex.DecodeString("0100e202290400270506060308070e10")
	dec := builtin["elsys-ers-co2"]
	b.ReportAllocs()
	benchDecode(b, dec, Input{FPort: 5, Bytes: payload})
}
