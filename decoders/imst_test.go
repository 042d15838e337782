package decoders

import (
	"reflect"
	"testing"
)

const ioke868Vectors = "imst-ioke868-codec.json"

func TestIOKE868(t *testing.T) {
	tests := []struct {
		name     string
		fport    uint8
		hex      string
		wantErr  error
		info     map[string]any // subset of general_info
		obj      map[string]any // subset of OBIS_IDs[0]
		objs     int            // length of OBIS_IDs, if not 1
		status   map[string]any // subset of a status message
		samples  []Sample
		warnings int
	}{
		{name: "unknown fPort", fport: 4, hex: "0002000101", wantErr: ErrInvalid},
		{name: "segmented, no header", fport: 69, hex: "", wantErr: ErrTruncated},
		{name: "field header cut", fport: 5, hex: "40", wantErr: ErrTruncated},
		{name: "field longer than payload", fport: 5, hex: "4012fc0100010801ff1e", wantErr: ErrTruncated},
		{name: "OBIS groups cut", fport: 5, hex: "4103fc0100", wantErr: ErrTruncated},
		{name: "time field too short", fport: 5, hex: "01025fd7", wantErr: ErrTruncated},
		{name: "mantissa over 64 bits", fport: 5, hex: "4111fc0100010801fffc010000000000000000", wantErr: ErrInvalid},
		{name: "short status", fport: 3, hex: "f9edd95f000180fcd75f0500", wantErr: ErrTruncated},
		{
			// 1-0:1.8.0*255 in Wh with scaler 0: the total register.
			name: "energy total sample", fport: 5, hex: "400cfc0100010800ff1e00" + "0186a0",
			obj:     map[string]any{"OBIS_ID": "1_0_1_8_0_255", "unit": "Wh", "value": 100000.0, "Scaler": 0.0},
			samples: []Sample{{Quantity: "metering.electricity.total", Value: NumberVal(100.0)}},
		},
		{
			name: "power sample, positive scaler", fport: 5, hex: "400afc0100100700ff1b01" + "2a",
			obj:     map[string]any{"OBIS_ID": "1_0_16_7_0_255", "unit": "W", "value": 420.0, "rawValue": 42.0},
			samples: []Sample{{Quantity: "metering.electricity.power", Value: NumberVal(420.0)}},
		},
		{
			// The list of OBIS objects is one array however the fields
			// interleave; a repeated info field counts once, the later.
			name: "info fields around OBIS objects", fport: 5,
			hex: "0002" + "0b04" + "400afc0100100700ff1b01" + "2a" + "01045fd75721" + "400cfc0100010800ff1e00" + "0186a0" + "0002" + "0e00",
			info: map[string]any{
				"MeterType": "export", "InputType": "reserved", "InfraredInputStatus": "ok",
				"Time": "Mon, 14 Dec 2020 12:14:25 GMT", "Time_Origin": "device time",
			},
			obj:  map[string]any{"OBIS_ID": "1_0_16_7_0_255", "unit": "W", "value": 420.0},
			objs: 2,
			samples: []Sample{
				{Quantity: "metering.electricity.power", Value: NumberVal(420.0)},
				{Quantity: "metering.electricity.total", Value: NumberVal(100.0)},
			},
		},
		{
			name: "unknown unit code: named by number, no sample", fport: 5, hex: "400afc0100100700ff6301" + "2a",
			obj: map[string]any{"unit": "unit 99", "value": 420.0},
		},
		{
			name: "tariff register and unitless values: no sample", fport: 5,
			hex: "400afc0100010801ff1efc" + "0a" + "4109fc0100010800fffc" + "0a",
		},
		{
			name: "unreadable string value keeps text only", fport: 5, hex: "4209fc0100010800ff2d2d",
			obj: map[string]any{"stringValue": "--", "rawValue": "2d-2d"},
		},
		{
			name: "unknown field skipped", fport: 5, hex: "7001ff" + "0002" + "0e00",
			info:     map[string]any{"MeterType": "export", "InputType": "reserved", "InfraredInputStatus": "ok"},
			warnings: 1,
		},
		{
			name: "info: import+export over IEC, pairing error", fport: 5, hex: "0002" + "0b04",
			info: map[string]any{"MeterType": "import+export", "InputType": "IEC protocol", "InfraredInputStatus": "pairing error"},
		},
		{
			name: "meter id with control byte", fport: 5, hex: "100341" + "0a" + "42",
			info: map[string]any{"MeterID": "41-0a-42 ( A?B )"},
		},
		{
			name: "segmented status, every state bit set", fport: 0x43,
			hex: "07" + "00000000" + "0203" + "00000000" + "00000000" + "ffff" + "000000000000000000000000",
			status: map[string]any{
				"Status_Time": "Thu, 01 Jan 1970 00:00:00 GMT", "Status_Firmware_Version": "3.2",
				"Status_LoRaWAN_Activation_State": "not activated", "Status_LoRaWAN_Configuration_State": "not available",
				"Status_OBIS_ID_Filter_List_State": "is empty",
			},
			warnings: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, ok := decodeCase(t, ioke868, tt.fport, tt.hex, tt.wantErr)
			if !ok {
				return
			}
			vecCheckSamples(t, res)
			if len(res.Warnings) != tt.warnings {
				t.Errorf("warnings %q, want %d", res.Warnings, tt.warnings)
			}
			if !reflect.DeepEqual(withoutKeys(res.Samples), tt.samples) {
				t.Errorf("samples %v, want %v", res.Samples, tt.samples)
			}
			subset := func(what string, got map[string]any, want map[string]any) {
				for k, v := range want {
					if got[k] != v {
						t.Errorf("%s %s = %#v, want %#v", what, k, got[k], v)
					}
				}
			}
			if tt.status != nil {
				subset("status", res.DataMap(), tt.status)
				return
			}
			subset("general_info", res.DataMap()["general_info"].(map[string]any), tt.info)
			if tt.obj != nil {
				objs := res.DataMap()["OBIS_IDs"].([]any)
				if len(objs) == 0 {
					t.Fatal("no OBIS objects")
				}
				subset("OBIS", objs[0].(map[string]any), tt.obj)
				if want := max(tt.objs, 1); len(objs) != want {
					t.Errorf("%d OBIS objects, want %d", len(objs), want)
				}
			}
		})
	}
}

func TestIOKE868Prefixes(t *testing.T) { vecCheckPrefixes(t, ioke868, ioke868Vectors) }

func FuzzIOKE868(f *testing.F) { vecFuzz(f, ioke868, ioke868Vectors) }

func BenchmarkIOKE868(b *testing.B) { vecBench(b, ioke868, ioke868Vectors) }
