package decoders

import (
	"reflect"
	"testing"
)

func TestDragino(t *testing.T) {
	for _, tc := range []struct {
		name    string
		model   string
		port    uint8
		hex     string
		data    map[string]any
		samples []Sample
		err     error
	}{
		{
			name: "LHT65 DS18B20 (vector)", model: "dragino-lht65", port: 2, hex: "cbf60b0d0376010add7fff",
			data: map[string]any{
				"BatV": 3.062, "Bat_status": 3.0, "Ext_sensor": "Temperature Sensor",
				"Hum_SHT": 88.6, "TempC_DS": 27.81, "TempC_SHT": 28.29,
			},
			samples: []Sample{
				{Quantity: "battery", Value: NumberVal(3.062)},
				{Quantity: "air.temperature", Value: NumberVal(28.29)},
				{Quantity: "air.relativeHumidity", Value: NumberVal(88.6)},
			},
		},
		{
			name: "LHT65N below zero, probe disconnected", model: "dragino-lht65n", port: 2, hex: "cbf6fe0c0376817fff7fff",
			data: map[string]any{
				"BatV": 3.062, "Bat_status": 3.0, "Ext_sensor": "Temperature Sensor", "No_connect": "Sensor no connection",
				"Hum_SHT": 88.6, "TempC_DS": 327.67, "TempC_SHT": -5.0,
			},
			samples: []Sample{
				{Quantity: "battery", Value: NumberVal(3.062)},
				{Quantity: "air.temperature", Value: NumberVal(-5.0)},
				{Quantity: "air.relativeHumidity", Value: NumberVal(88.6)},
			},
		},
		{
			name: "LHT65 illumination", model: "dragino-lht65", port: 2, hex: "0bb8096001f405012c0000",
			data: map[string]any{
				"BatV": 3.0, "Bat_status": 0.0, "TempC_SHT": 24.0, "Hum_SHT": 50.0,
				"Work_mode": "Illumination Sensor", "ILL_lx": 300.0,
			},
			samples: []Sample{
				{Quantity: "battery", Value: NumberVal(3.0)},
				{Quantity: "air.temperature", Value: NumberVal(24.0)},
				{Quantity: "air.relativeHumidity", Value: NumberVal(50.0)},
				{Quantity: "air.lightIntensity", Value: NumberVal(300.0)},
			},
		},
		{
			name: "LHT65 interrupt", model: "dragino-lht65", port: 2, hex: "0bb8096001f40401000000",
			data: map[string]any{
				"BatV": 3.0, "Bat_status": 0.0, "TempC_SHT": 24.0, "Hum_SHT": 50.0,
				"Work_mode": "Interrupt Sensor send", "Exti_pin_level": "High", "Exti_status": "False",
			},
			samples: []Sample{
				{Quantity: "battery", Value: NumberVal(3.0)},
				{Quantity: "air.temperature", Value: NumberVal(24.0)},
				{Quantity: "air.relativeHumidity", Value: NumberVal(50.0)},
			},
		},
		{
			name: "LHT65 32-bit count above 2^31", model: "dragino-lht65", port: 2, hex: "0bb8096001f40880000001",
			data: map[string]any{
				"BatV": 3.0, "Bat_status": 0.0, "TempC_SHT": 24.0, "Hum_SHT": 50.0,
				"Work_mode": "Interrupt Sensor count", "Exit_count": 2147483649.0,
			},
			samples: []Sample{
				{Quantity: "battery", Value: NumberVal(3.0)},
				{Quantity: "air.temperature", Value: NumberVal(24.0)},
				{Quantity: "air.relativeHumidity", Value: NumberVal(50.0)},
			},
		},
		{
			name: "LHT65 DS18B20 and timestamp: no battery voltage", model: "dragino-lht65", port: 2, hex: "0add0960c1f40965f5e100",
			data: map[string]any{
				"TempC_DS": 27.81, "Bat_status": 3.0, "TempC_SHT": 24.0, "Hum_SHT": 50.0,
				"Work_mode": "DS18B20 & timestamp", "Systimestamp": 1710612736.0,
			},
			samples: []Sample{
				{Quantity: "air.temperature", Value: NumberVal(24.0)},
				{Quantity: "air.relativeHumidity", Value: NumberVal(50.0)},
			},
		},
		{
			name: "LHT65 probe id", model: "dragino-lht65", port: 2, hex: "0bb828ff64030f1e4e8a0b",
			data: map[string]any{
				"BatV": 3.0, "Bat_status": 0.0, "Work_mode": "DS18B20ID", "ID": "28 ff 64 03 1e 4e 8a 0b ",
			},
			samples: []Sample{{Quantity: "battery", Value: NumberVal(3.0)}},
		},
		{name: "LHT65 wrong port", model: "dragino-lht65", port: 42, hex: "cbf60b0d0376010add7fff", err: ErrInvalid},
		{name: "LHT65 poll reply", model: "dragino-lht65", port: 2, hex: "cbf60b0d0376410add7fff", err: ErrInvalid},
		{name: "LHT65 short", model: "dragino-lht65", port: 2, hex: "cbf60b0d0376010add7f", err: ErrTruncated},
		{name: "LHT65 long", model: "dragino-lht65", port: 2, hex: "cbf60b0d0376010add7fff00", err: ErrInvalid},
		{
			name: "LSE01 (vector, corrected to numbers)", model: "dragino-lse01", port: 2, hex: "ce2900f107a5099b6e2890",
			data: map[string]any{"Bat": 3.625, "TempC_DS18B20": 24.1, "conduct_SOIL": 28200.0, "temp_SOIL": 24.59, "water_SOIL": 19.57},
			samples: []Sample{
				{Quantity: "battery", Value: NumberVal(3.625)},
				{Quantity: "soil.moisture", Value: NumberVal(19.57)},
				{Quantity: "soil.temperature", Value: NumberVal(24.59)},
				{Quantity: "soil.ec", Value: NumberVal(28.2)},
			},
		},
		{
			// decoder_quirks: the codec would give (0xFF9C - 0xFFFF)/100
			// = -0.99; two's complement is -1.00.
			name: "LSE01 negative temperatures", model: "dragino-lse01", port: 2, hex: "0e10ff9c0000ff9c000000",
			data: map[string]any{"Bat": 3.6, "TempC_DS18B20": -10.0, "conduct_SOIL": 0.0, "temp_SOIL": -1.0, "water_SOIL": 0.0},
			samples: []Sample{
				{Quantity: "battery", Value: NumberVal(3.6)},
				{Quantity: "soil.moisture", Value: NumberVal(0.0)},
				{Quantity: "soil.temperature", Value: NumberVal(-1.0)},
				{Quantity: "soil.ec", Value: NumberVal(0.0)},
			},
		},
		{
			// LHT52 user manual, 2.4.2: 0x08CD -> 22.53 °C, 0x0220 -> 54.4 %,
			// 0xF5C6 -> -26.18 °C (the probe); Ext 1; Unix time 0x6565F5E1
			// = 1701180897.
			name: "LHT52 sensor values", model: "dragino-lht52", port: 2, hex: "08cd0220f5c6016565f5e1",
			data: map[string]any{
				"TempC_SHT": 22.53, "Hum_SHT": 54.4, "TempC_DS": -26.18, "Ext": 1.0, "Systimestamp": 1701180897.0,
			},
			samples: []Sample{
				{Quantity: "air.temperature", Value: NumberVal(22.53)},
				{Quantity: "air.relativeHumidity", Value: NumberVal(54.4)},
			},
		},
		{
			// LHT52 user manual, 2.4.1 example: model 9, firmware 0x0100,
			// EU868, sub-band 0, battery 0x0B3A = 2874 mV.
			name: "LHT52 device status", model: "dragino-lht52", port: 5, hex: "09010001000b3a",
			data: map[string]any{
				"Sensor_Model": 9.0, "Firmware_Version": "100", "Freq_Band": 1.0, "Sub_Band": 0.0, "Bat_mV": 2874.0,
			},
			samples: []Sample{{Quantity: "battery", Value: NumberVal(2.874)}},
		},
		{
			name: "LHT52 probe id", model: "dragino-lht52", port: 4, hex: "28ff64031e4e8a0b",
			data: map[string]any{"DS18B20_ID": "28ff64031e4e8a0b"},
		},
		{name: "LHT52 datalog is kept", model: "dragino-lht52", port: 3, hex: "08cd0220f5c6016565f5e1", err: ErrInvalid},
		{name: "LHT52 wrong port", model: "dragino-lht52", port: 42, hex: "08cd0220f5c6016565f5e1", err: ErrInvalid},
		{name: "LHT52 short", model: "dragino-lht52", port: 2, hex: "08cd0220f5c6016565f5", err: ErrTruncated},
		{name: "LHT52 long", model: "dragino-lht52", port: 2, hex: "08cd0220f5c6016565f5e100", err: ErrInvalid},
		{name: "LHT52 short status", model: "dragino-lht52", port: 5, hex: "0901000100", err: ErrTruncated},
		{name: "LHT52 long probe id", model: "dragino-lht52", port: 4, hex: "28ff64031e4e8a0b00", err: ErrInvalid},
		{name: "LSE01 wrong port", model: "dragino-lse01", port: 42, hex: "ce2900f107a5099b6e2890", err: ErrInvalid},
		{name: "LSE01 short", model: "dragino-lse01", port: 2, hex: "ce2900f1", err: ErrTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, ok := decodeCase(t, builtin[tc.model], tc.port, tc.hex, tc.err)
			if !ok {
				return
			}
			vecCheckSamples(t, res)
			if got := res.DataMap(); !reflect.DeepEqual(got, tc.data) {
				t.Errorf("data: got %v, want %v", got, tc.data)
			}
			if !reflect.DeepEqual(withoutKeys(res.Samples), tc.samples) {
				t.Errorf("samples: got %v, want %v", res.Samples, tc.samples)
			}
		})
	}
}

func TestDraginoTruncation(t *testing.T) {
	for model, file := range map[string]string{
		"dragino-lht65": "dragino-lht65-codec.json",
		"dragino-lse01": "dragino-lse01-codec.json",
	} {
		t.Run(model, func(t *testing.T) { vendorPrefixes(t, model, file) })
	}
}

func FuzzDragino(f *testing.F) {
	// Seeds: the vectors, and testdata/fuzz/FuzzDragino, made from them
	// and the table tests above. The port is fixed at 2 (other ports are
	// rejected before the bytes are read), but for the LHT52's 4 and 5.
	vecSeedBytes(f, "dragino-lht65-codec.json", "dragino-lse01-codec.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range []string{"dragino-lht65", "dragino-lse01", "dragino-lht52"} {
			if res, err := vendorDecode(t, m, Input{FPort: 2, Bytes: b}); err == nil {
				vecCheckSamples(t, res)
			}
		}
		// The LHT52's other ports read the bytes too.
		for _, port := range []uint8{4, 5} {
			if res, err := vendorDecode(t, "dragino-lht52", Input{FPort: port, Bytes: b}); err == nil {
				vecCheckSamples(t, res)
			}
		}
	})
}

func BenchmarkDragino(b *testing.B) {
	vecBenchModels(b, "dragino-lht65", "dragino-lse01")
	benchHexModels(b, "dragino-lht52")
}
