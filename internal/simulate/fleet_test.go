package simulate

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"testing"
)

func TestFleetIsDeterministic(t *testing.T) {
	for _, format := range []string{ChirpStackV4, TTSV3} {
		a, _ := NewFleet(Options{Format: format, Devices: 5, Seed: 42})
		b, _ := NewFleet(Options{Format: format, Devices: 5, Seed: 42})
		c, _ := NewFleet(Options{Format: format, Devices: 5, Seed: 43})
		differs := false
		for i := 0; i < 100; i++ {
			ma, mb, mc := a.Next(), b.Next(), c.Next()
			if ma.Topic != mb.Topic || !bytes.Equal(ma.Payload, mb.Payload) {
				t.Fatalf("%s message %d differs for the same seed", format, i)
			}
			if !bytes.Equal(ma.Payload, mc.Payload) {
				differs = true
			}
		}
		if !differs {
			t.Fatalf("%s: seeds 42 and 43 gave the same stream", format)
		}
	}
}

func TestFleetPayloadEncodesValues(t *testing.T) {
	f, _ := NewFleet(Options{Format: ChirpStackV4, Devices: 3, Seed: 1})
	for i := 0; i < 50; i++ {
		m := f.Next()
		var msg struct {
			Data string `json:"data"`
			FCnt uint32 `json:"fCnt"`
		}
		if err := json.Unmarshal(m.Payload, &msg); err != nil {
			t.Fatal(err)
		}
		b, _ := base64.StdEncoding.DecodeString(msg.Data)
		temp := float64(int16(uint16(b[2])<<8|uint16(b[3]))) / 10
		hum := float64(b[6]) / 2
		pres := float64(uint16(b[9])<<8|uint16(b[10])) / 10
		if temp != m.Temperature || hum != m.Humidity || pres != m.Pressure || msg.FCnt != m.FCnt {
			t.Fatalf("payload %x says %v/%v/%v fcnt %d, message says %v/%v/%v fcnt %d", b, temp, hum, pres, msg.FCnt, m.Temperature, m.Humidity, m.Pressure, m.FCnt)
		}
	}
}

// TestFleetObject: with Object, each ChirpStack uplink carries the object
// ChirpStack's Cayenne LPP codec makes of its payload, and the stream's
// other bytes stay those of the same seed without it.
func TestFleetObject(t *testing.T) {
	with, _ := NewFleet(Options{Format: ChirpStackV4, Devices: 3, Seed: 1, Object: true})
	without, _ := NewFleet(Options{Format: ChirpStackV4, Devices: 3, Seed: 1})
	for i := 0; i < 50; i++ {
		m, plain := with.Next(), without.Next()
		var msg map[string]any
		if err := json.Unmarshal(m.Payload, &msg); err != nil {
			t.Fatal(err)
		}
		obj, _ := msg["object"].(map[string]any)
		want := map[string]any{
			"temperatureSensor": map[string]any{"1": m.Temperature},
			"humiditySensor":    map[string]any{"2": m.Humidity},
			"barometer":         map[string]any{"3": m.Pressure},
		}
		if !reflect.DeepEqual(obj, want) {
			t.Fatalf("message %d: object %v, want %v", i, obj, want)
		}
		delete(msg, "object")
		var rest map[string]any
		if err := json.Unmarshal(plain.Payload, &rest); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(msg, rest) || m.Topic != plain.Topic {
			t.Fatalf("message %d differs from the stream without the object beyond it", i)
		}
	}
}
