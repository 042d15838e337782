package decoders

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strconv"
	"testing"
	"time"
)

// lppVectorFile is testdata/vectors/cayenne-lpp.json, copied from
// shared/vectors: decode vectors written outside this project from the
// myDevices specification, TTN's go-cayenne-lib and lorawan-stack tests and
// ElectronicCats/CayenneLPP tests (sources listed in the file).
type lppVectorFile struct {
	Vectors []struct {
		ID       string `json:"id"`
		BytesHex string `json:"bytes_hex"`
		Expected []struct {
			Channel int `json:"channel"`
			Type    int `json:"type"`
			Value   any `json:"value"`
		} `json:"expected"`
		ExpectedError string         `json:"expected_error"`
		TTS           map[string]any `json:"tts_decoded_payload"`
		Extended      bool           `json:"extended"`
	} `json:"vectors"`
}

// The key names below are transcribed from
// testdata/research-samples/cayennelpp-output-shapes.json (ChirpStack's
// cayenne_lpp.rs and The Things Stack's keys.go), independently of the
// decoder's table, so a typo in either shows up.
var (
	lppChirpKeys = map[int]string{
		0: "digitalInput", 1: "digitalOutput", 2: "analogInput", 3: "analogOutput",
		100: "genericSensor", 101: "illuminanceSensor", 102: "presenceSensor",
		103: "temperatureSensor", 104: "humiditySensor", 113: "accelerometer",
		115: "barometer", 116: "voltage", 117: "current", 118: "frequency",
		120: "percentage", 121: "altitude", 125: "concentration", 128: "power",
		130: "distance", 131: "energy", 132: "direction", 133: "unix_time",
		134: "gyrometer", 135: "color", 136: "gpsLocation", 142: "switch",
	}
	lppTTSKeys = map[int]string{
		0: "digital_in", 1: "digital_out", 2: "analog_in", 3: "analog_out",
		101: "luminosity", 102: "presence", 103: "temperature", 104: "relative_humidity",
		113: "accelerometer", 115: "barometric_pressure", 134: "gyrometer", 136: "gps",
	}
)

// float32ed rounds every number in v through float32, as The Things Stack
// renders Cayenne values.
func float32ed(v any) any {
	switch x := v.(type) {
	case float64:
		return float64(float32(x))
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = float32ed(e)
		}
		return out
	}
	return v
}

func loadLPPVectors(t testing.TB) lppVectorFile {
	t.Helper()
	raw, err := os.ReadFile("../testdata/vectors/cayenne-lpp.json")
	if err != nil {
		t.Fatal(err)
	}
	var vf lppVectorFile
	if err := json.Unmarshal(raw, &vf); err != nil {
		t.Fatal(err)
	}
	if len(vf.Vectors) != 25 {
		t.Fatalf("cayenne-lpp.json has %d vectors, want 25", len(vf.Vectors))
	}
	return vf
}

func TestCayenneVectors(t *testing.T) {
	vf := loadLPPVectors(t)
	chirp, tts := builtin["cayenne-lpp"], builtin["cayenne-lpp-tts"]
	var decoded, rejected int
	for _, v := range vf.Vectors {
		t.Run(v.ID, func(t *testing.T) {
			b, err := hex.DecodeString(v.BytesHex)
			if err != nil {
				t.Fatal(err)
			}
			gotC, errC := chirp.Decode(Input{FPort: 1, Bytes: b})
			gotT, errT := tts.Decode(Input{FPort: 1, Bytes: b})
			if v.ExpectedError != "" {
				rejected++
				for style, err := range map[string]error{"chirpstack": errC, "tts": errT} {
					if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrInvalid) {
						t.Errorf("%s: want ErrTruncated or ErrInvalid (%s), got %v", style, v.ExpectedError, err)
					}
				}
				return
			}
			decoded++
			if errC != nil {
				t.Fatalf("chirpstack style: %v", errC)
			}
			wantC := map[string]any{}
			wantT := map[string]any{}
			ttsKnows := true
			for _, r := range v.Expected {
				ch := strconv.Itoa(r.Channel)
				key, ok := lppChirpKeys[r.Type]
				if !ok {
					t.Fatalf("type %d missing from the test's key list", r.Type)
				}
				m, _ := wantC[key].(map[string]any)
				if m == nil {
					m = map[string]any{}
					wantC[key] = m
				}
				m[ch] = r.Value
				if name, ok := lppTTSKeys[r.Type]; ok {
					wantT[name+"_"+ch] = float32ed(r.Value)
				} else {
					ttsKnows = false
				}
			}
			// Exact comparison: the decoder divides integers, giving the
			// correctly rounded decimals the vectors print.
			if !reflect.DeepEqual(gotC.DataMap(), wantC) {
				gj, _ := json.Marshal(gotC.DataMap())
				wj, _ := json.Marshal(wantC)
				t.Errorf("chirpstack style:\n got %s\nwant %s", gj, wj)
			}
			if v.Extended == ttsKnows {
				t.Errorf("vector marked extended=%v, but the TTS key list says %v", v.Extended, !ttsKnows)
			}
			if !ttsKnows {
				if !errors.Is(errT, ErrInvalid) {
					t.Errorf("tts style on an extended type: want ErrInvalid, got %v", errT)
				}
			} else {
				if errT != nil {
					t.Fatalf("tts style: %v", errT)
				}
				if !reflect.DeepEqual(gotT.DataMap(), wantT) {
					t.Errorf("tts style:\n got %v\nwant %v", gotT.DataMap(), wantT)
				}
				if v.TTS != nil {
					// The file's own TTS rendering (27.200000762939453
					// is float32(27.2); the others print the decimal).
					if want := float32ed(v.TTS); !reflect.DeepEqual(comparable(gotT.DataMap()), comparable(want)) {
						t.Errorf("tts style vs tts_decoded_payload:\n got %v\nwant %v", gotT.DataMap(), want)
					}
				}
			}
			for style, res := range map[string]Result{"chirpstack": gotC, "tts": gotT} {
				if _, warn, err := Check(res.Samples); err != nil || len(warn) > 0 {
					t.Errorf("%s samples: %v %v", style, err, warn)
				}
				if res.Record != nil {
					checkSampleKeys(t, res)
				}
			}
		})
	}
	if decoded != 21 || rejected != 4 {
		t.Errorf("decoded %d and rejected %d vectors, want 21 and 4", decoded, rejected)
	}
}

func TestCayenneOutputShapes(t *testing.T) {
	raw, err := os.ReadFile("../testdata/research-samples/cayennelpp-output-shapes.json")
	if err != nil {
		t.Fatal(err)
	}
	var shapes struct {
		Hex   string         `json:"input_bytes_hex"`
		Chirp map[string]any `json:"chirpstack_v4_object"`
		TTS   map[string]any `json:"tts_decoded_payload"`
	}
	if err := json.Unmarshal(raw, &shapes); err != nil {
		t.Fatal(err)
	}
	b, _ := hex.DecodeString(shapes.Hex)
	for model, want := range map[string]map[string]any{
		"cayenne-lpp":     shapes.Chirp,
		"cayenne-lpp-tts": float32ed(shapes.TTS).(map[string]any),
	} {
		res, err := builtin[model].Decode(Input{Bytes: b})
		if err != nil {
			t.Fatalf("%s: %v", model, err)
		}
		if !reflect.DeepEqual(res.DataMap(), want) {
			t.Errorf("%s: got %v, want %v", model, res.DataMap(), want)
		}
	}
}

func TestCayenneSamples(t *testing.T) {
	for _, tc := range []struct {
		name string
		hex  string
		want []Sample
	}{
		{"temperature and humidity on two channels", "03670110056700ff02686c", []Sample{
			{Quantity: "air.temperature", Value: NumberVal(27.2), Channel: "3"},
			{Quantity: "air.temperature", Value: NumberVal(25.5), Channel: "5"},
			{Quantity: "air.relativeHumidity", Value: NumberVal(54.0), Channel: "2"},
		}},
		{"gps", "018806765ff2960a0003e8", []Sample{
			{Quantity: "position.latitude", Value: NumberVal(42.3519), Channel: "1"},
			{Quantity: "position.longitude", Value: NumberVal(-87.9094), Channel: "1"},
			{Quantity: "position.altitude", Value: NumberVal(10.0), Channel: "1"},
		}},
		{"presence, illuminance, barometer", "0166010165012c0a7329ef", []Sample{
			{Quantity: "action.motion.detected", Value: BoolVal(true), Channel: "1"},
			{Quantity: "air.lightIntensity", Value: NumberVal(300.0), Channel: "1"},
			{Quantity: "air.pressure", Value: NumberVal(1073.5), Channel: "10"},
		}},
		{"no presence", "016600", []Sample{{Quantity: "action.motion.detected", Value: BoolVal(false), Channel: "1"}}},
		{"repeated channel overwrites", "0367011003670111", []Sample{{Quantity: "air.temperature", Value: NumberVal(27.3), Channel: "3"}}},
		// Voltage, current, concentration, power, energy, percentage:
		// no catalogue quantity means the same thing on every device.
		{"extended types stay in data", "037457b8017500ed057d0fef05800d7a01780f", nil},
		{"altitude", "0579ffef", []Sample{{Quantity: "position.altitude", Value: NumberVal(-17.0), Channel: "5"}}},
		{"empty payload", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := hex.DecodeString(tc.hex)
			res, err := builtin["cayenne-lpp"].Decode(Input{Bytes: b})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(withoutKeys(res.Samples), tc.want) {
				t.Errorf("got %v, want %v", res.Samples, tc.want)
			}
			if _, warn, err := Check(res.Samples); err != nil || len(warn) > 0 {
				t.Errorf("Check: %v %v", err, warn)
			}
		})
	}
}

func TestCayenneExtendedShapes(t *testing.T) {
	for _, tc := range []struct {
		name string
		hex  string
		want map[string]any
	}{
		{"colour", "0787180fef", map[string]any{"color": map[string]any{"7": map[string]any{"r": 24.0, "g": 15.0, "b": 239.0}}}},
		{"unix time", "02850000000a", map[string]any{"unix_time": map[string]any{"2": 10.0}}},
		{"percentage", "017864", map[string]any{"percentage": map[string]any{"1": 100.0}}},
		{"generic max", "0164ffffffff", map[string]any{"genericSensor": map[string]any{"1": 4294967295.0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := hex.DecodeString(tc.hex)
			res, err := builtin["cayenne-lpp"].Decode(Input{Bytes: b})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.DataMap(), tc.want) {
				t.Errorf("got %v, want %v", res.DataMap(), tc.want)
			}
		})
	}
}

func TestCayenneRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		hex  string
		want error
	}{
		{"lone channel byte", "036701100a", ErrTruncated},
		{"unknown type", "0324", ErrInvalid},
		{"short accelerometer", "0671000000000000"[:14], ErrTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := hex.DecodeString(tc.hex)
			for _, model := range []string{"cayenne-lpp", "cayenne-lpp-tts"} {
				if _, err := builtin[model].Decode(Input{Bytes: b}); !errors.Is(err, tc.want) {
					t.Errorf("%s: got %v, want %v", model, err, tc.want)
				}
			}
		})
	}
}

// TestCayenneTruncation decodes every prefix of every vector: each must
// decode or fail with ErrTruncated/ErrInvalid, never panic.
func TestCayenneTruncation(t *testing.T) {
	vf := loadLPPVectors(t)
	for _, v := range vf.Vectors {
		b, _ := hex.DecodeString(v.BytesHex)
		for n := 0; n <= len(b); n++ {
			for _, model := range []string{"cayenne-lpp", "cayenne-lpp-tts"} {
				_, err := builtin[model].Decode(Input{Bytes: b[:n]})
				if err != nil && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrInvalid) {
					t.Errorf("%s %s[:%d]: unwrapped error %v", model, v.ID, n, err)
				}
			}
		}
	}
}

func FuzzCayenne(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzCayenne, made from cayenne-lpp.json.
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, model := range []string{"cayenne-lpp", "cayenne-lpp-tts"} {
			res, err := builtin[model].Decode(Input{FPort: 1, Bytes: b})
			if err != nil {
				if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrInvalid) {
					t.Fatalf("%s: unwrapped error %v", model, err)
				}
				continue
			}
			vecCheckSamples(t, res)
			// Every sample time, once checked against an uplink, is the
			// uplink's (zero) or a plausible one of its own.
			up := time.Date(2025, 3, 10, 8, 15, 30, 0, time.UTC)
			CheckTimes(res.Samples, up)
			for _, s := range res.Samples {
				if !s.Time.IsZero() && !plausibleTime(s.Time, up) {
					t.Fatalf("%s: sample at %s after CheckTimes", model, s.Time)
				}
			}
		}
	})
}

// BenchmarkCayenne decodes a typical environmental node's uplink: battery
// as analog input, temperature, humidity, pressure, light, presence and a
// GPS fix (33 bytes).
func BenchmarkCayenne(b *testing.B) {
	payload, _ := hex.DecodeString("0102014a0367011004686c05732776066501f4076601088806765ff2960a0003e8")
	for _, model := range []string{"cayenne-lpp", "cayenne-lpp-tts"} {
		b.Run(model, func(b *testing.B) {
			dec := builtin[model]
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			benchDecode(b, dec, Input{FPort: 1, Bytes: payload})
		})
	}
}
