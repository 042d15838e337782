package decoders

import (
	"errors"
	"reflect"
	"testing"
)

func TestDecentlab(t *testing.T) {
	for _, tc := range []struct {
		name     string
		model    string
		hex      string
		samples  []Sample
		keys     []string // Data keys besides protocol_version and device_id
		warnings int
		err      error
	}{
		{
			name: "DL-PM all groups (vector 1)", model: "decentlab-dl-pm",
			hex: "021b50000f0c25002500270027002701f50107012c012d012d012d67bd618dbd10",
			samples: []Sample{
				{Quantity: "battery", Value: NumberVal(3.109)},
				{Quantity: "air.pm1", Value: NumberVal(3.7)},
				{Quantity: "air.pm25", Value: NumberVal(3.9)},
				{Quantity: "air.pm4", Value: NumberVal(3.9)},
				{Quantity: "air.pm10", Value: NumberVal(3.9)},
				{Quantity: "air.temperature", Value: NumberVal(24.35660461425781)},
				{Quantity: "air.relativeHumidity", Value: NumberVal(41.63221740722656)},
				{Quantity: "air.pressure", Value: NumberVal(968.0)},
			},
		},
		{
			name: "DL-PM battery only (vector 3)", model: "decentlab-dl-pm", hex: "021b5000010c25",
			samples: []Sample{{Quantity: "battery", Value: NumberVal(3.109)}},
			keys:    []string{"battery_voltage"},
		},
		{
			name: "DL-TRS12 (vector 1)", model: "decentlab-dl-trs12", hex: "0210d3000346be813d00000c80",
			samples: []Sample{
				{Quantity: "soil.moisture", Value: NumberVal(0.006886900000000029 * 100)},
				{Quantity: "soil.temperature", Value: NumberVal(31.7)},
				{Quantity: "soil.ec", Value: NumberVal(0.0)},
				{Quantity: "battery", Value: NumberVal(3.2)},
			},
		},
		{
			name: "DL-TRS12 frozen soil, 1500 µS/cm", model: "decentlab-dl-trs12", hex: "0210d3000146be7fe805dc",
			samples: []Sample{
				{Quantity: "soil.moisture", Value: NumberVal(0.006886900000000029 * 100)},
				{Quantity: "soil.temperature", Value: NumberVal(-2.4)},
				{Quantity: "soil.ec", Value: NumberVal(1.5)},
			},
			keys: []string{"dielectric_permittivity", "volumetric_water_content", "soil_temperature", "electrical_conductivity"},
		},
		{
			name: "DL-MBX (vector 1)", model: "decentlab-dl-mbx", hex: "02012f000304d200010bb1",
			samples: []Sample{{Quantity: "level.distance", Value: NumberVal(1.234)}, {Quantity: "battery", Value: NumberVal(2.993)}},
		},
		{
			name: "undefined flag and trailing bytes are ignored with warnings", model: "decentlab-dl-mbx", hex: "02012f00060bb1ffff",
			samples:  []Sample{{Quantity: "battery", Value: NumberVal(2.993)}},
			keys:     []string{"battery_voltage"},
			warnings: 2,
		},
		{
			name: "no groups", model: "decentlab-dl-mbx", hex: "02012f0000",
			keys: []string{},
		},
		{name: "protocol version 1", model: "decentlab-dl-pm", hex: "011b5000010c25", err: ErrInvalid},
		{name: "header cut off", model: "decentlab-dl-pm", hex: "021b5000", err: ErrTruncated},
		{name: "group cut off", model: "decentlab-dl-pm", hex: "021b50000d0c2567bd618d", err: ErrTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, ok := decodeCase(t, builtin[tc.model], 1, tc.hex, tc.err)
			if !ok {
				return
			}
			if !reflect.DeepEqual(withoutKeys(res.Samples), tc.samples) {
				t.Errorf("samples: got %v, want %v", res.Samples, tc.samples)
			}
			if tc.keys != nil {
				if len(res.DataMap()) != len(tc.keys)+2 {
					t.Errorf("data: got %v, want keys %v", res.DataMap(), tc.keys)
				}
				for _, k := range tc.keys {
					if _, ok := res.DataMap()[k]; !ok {
						t.Errorf("data: no %q in %v", k, res.DataMap())
					}
				}
			}
			if len(res.Warnings) != tc.warnings {
				t.Errorf("warnings: got %q, want %d", res.Warnings, tc.warnings)
			}
		})
	}
}

func TestDecentlabTruncation(t *testing.T) {
	for model, file := range map[string]string{
		"decentlab-dl-pm":    "decentlab-dl-pm-codec.json",
		"decentlab-dl-trs12": "decentlab-dl-trs12-codec.json",
		"decentlab-dl-mbx":   "decentlab-dl-mbx-codec.json",
	} {
		t.Run(model, func(t *testing.T) { vendorPrefixes(t, model, file) })
	}
}

// dlObj is one value of a Decentlab codec's output; unit "" means none.
func dlObj(name, unit string, v float64) map[string]any {
	o := map[string]any{"displayName": name, "value": v}
	if unit != "" {
		o["unit"] = unit
	}
	return o
}

// dlData is a Decentlab codec's whole output: the header and the values.
func dlData(deviceID float64, values map[string]any) map[string]any {
	values["protocol_version"] = 2.0
	values["device_id"] = deviceID
	return values
}

// dlScaled multiplies at run time, in float64, as a Mapping's Scale does
// (a constant expression would be computed exactly, then rounded once).
func dlScaled(v, scale float64) float64 { return v * scale }

// dlExamples are the examples of the Decentlab codecs of the devices that
// have no file in testdata/vectors. Each expected Data is the example's
// output in The Things Network device repository
// (github.com/TheThingsNetwork/lorawan-devices, vendor/decentlab/<file>),
// computed there by Decentlab's own codec; the samples follow from it
// through the model's maps. The first example of a model is the one
// benchmarked.
var dlExamples = []struct {
	model, source string
	hex           string
	data          map[string]any
	samples       []Sample
}{
	{
		model: "decentlab-dl-sht35", source: "dl-sht35-codec.yaml, example 1",
		hex: "02030e000364a079b10c60",
		data: dlData(782, map[string]any{
			"air_temperature": dlObj("Air temperature", "°C", 23.787670710307466),
			"air_humidity":    dlObj("Air humidity", "%", 47.536430914778364),
			"battery_voltage": dlObj("Battery voltage", "V", 3.168),
		}),
		samples: []Sample{
			{Quantity: "air.temperature", Value: NumberVal(23.787670710307466)},
			{Quantity: "air.relativeHumidity", Value: NumberVal(47.536430914778364)},
			{Quantity: "battery", Value: NumberVal(3.168)},
		},
	},
	{
		model: "decentlab-dl-sht35", source: "dl-sht35-codec.yaml, example 2",
		hex:     "02030e00020c60",
		data:    dlData(782, map[string]any{"battery_voltage": dlObj("Battery voltage", "V", 3.168)}),
		samples: []Sample{{Quantity: "battery", Value: NumberVal(3.168)}},
	},
	{
		// The pressure, slightly below 0 bar, is out of water.pressure's
		// range: Check drops it (TestDecentlabExamples counts the warning).
		model: "decentlab-dl-pr26", source: "dl-pr26-0-1-codec.yaml, example 1 (Pmin 0, Pmax 1: the defaults)",
		hex: "02016700033e8060170c7f",
		data: dlData(359, map[string]any{
			"pressure":        dlObj("Pressure", "bar", -0.01171875),
			"temperature":     dlObj("Temperature", "°C", 25.671875),
			"battery_voltage": dlObj("Battery voltage", "V", 3.199),
		}),
		samples: []Sample{
			{Quantity: "water.pressure", Value: NumberVal(-11.71875)},
			{Quantity: "water.temperature.current", Value: NumberVal(25.671875)},
			{Quantity: "battery", Value: NumberVal(3.199)},
		},
	},
	{
		model: "decentlab-dl-pr26", source: "dl-pr26-0-1-codec.yaml, example 2",
		hex:     "02016700020c7f",
		data:    dlData(359, map[string]any{"battery_voltage": dlObj("Battery voltage", "V", 3.199)}),
		samples: []Sample{{Quantity: "battery", Value: NumberVal(3.199)}},
	},
	{
		model: "decentlab-dl-pr36", source: "dl-pr36-8192-codec.yaml, example 1 (kp 8192: the default)",
		hex: "02032b0003806797810c2b",
		data: dlData(811, map[string]any{
			"pressure":        dlObj("Pressure", "bar", 0.0125732421875),
			"temperature":     dlObj("Temperature", "°C", 23.50390625),
			"battery_voltage": dlObj("Battery voltage", "V", 3.115),
		}),
		samples: []Sample{
			{Quantity: "water.pressure", Value: NumberVal(12.5732421875)},
			{Quantity: "water.temperature.current", Value: NumberVal(23.50390625)},
			{Quantity: "battery", Value: NumberVal(3.115)},
		},
	},
	{
		model: "decentlab-dl-pr36", source: "dl-pr36-8192-codec.yaml, example 2",
		hex:     "02032b00020c2b",
		data:    dlData(811, map[string]any{"battery_voltage": dlObj("Battery voltage", "V", 3.115)}),
		samples: []Sample{{Quantity: "battery", Value: NumberVal(3.115)}},
	},
	{
		model: "decentlab-dl-lp8p", source: "dl-lp8p-codec.yaml, example 1",
		hex: "020578000f67bd618d1cedbd1081d981f4895b0bd80bb50000959895390c25",
		data: dlData(1400, map[string]any{
			"air_temperature":        dlObj("Air temperature", "°C", 24.35660461425781),
			"air_humidity":           dlObj("Air humidity", "%", 41.63221740722656),
			"barometer_temperature":  dlObj("Barometer temperature", "°C", 24.05),
			"barometric_pressure":    dlObj("Barometric pressure", "Pa", 96800),
			"co2_concentration":      dlObj("CO2 concentration", "ppm", 473),
			"co2_concentration_lpf":  dlObj("CO2 concentration LPF", "ppm", 500),
			"co2_sensor_temperature": dlObj("CO2 sensor temperature", "°C", 23.95),
			"capacitor_voltage_1":    dlObj("Capacitor voltage 1", "V", 3.032),
			"capacitor_voltage_2":    dlObj("Capacitor voltage 2", "V", 2.997),
			"co2_sensor_status":      dlObj("CO2 sensor status", "", 0),
			"raw_ir_reading":         dlObj("Raw IR reading", "", 38296),
			"raw_ir_reading_lpf":     dlObj("Raw IR reading LPF", "", 38201),
			"battery_voltage":        dlObj("Battery voltage", "V", 3.109),
		}),
		samples: []Sample{
			{Quantity: "air.temperature", Value: NumberVal(24.35660461425781)},
			{Quantity: "air.relativeHumidity", Value: NumberVal(41.63221740722656)},
			{Quantity: "air.pressure", Value: NumberVal(dlScaled(96800, 0.01))},
			{Quantity: "air.co2", Value: NumberVal(473)},
			{Quantity: "battery", Value: NumberVal(3.109)},
		},
	},
	{
		model: "decentlab-dl-lp8p", source: "dl-lp8p-codec.yaml, example 2",
		hex: "020578000b67bd618d1cedbd100c25",
		data: dlData(1400, map[string]any{
			"air_temperature":       dlObj("Air temperature", "°C", 24.35660461425781),
			"air_humidity":          dlObj("Air humidity", "%", 41.63221740722656),
			"barometer_temperature": dlObj("Barometer temperature", "°C", 24.05),
			"barometric_pressure":   dlObj("Barometric pressure", "Pa", 96800),
			"battery_voltage":       dlObj("Battery voltage", "V", 3.109),
		}),
		samples: []Sample{
			{Quantity: "air.temperature", Value: NumberVal(24.35660461425781)},
			{Quantity: "air.relativeHumidity", Value: NumberVal(41.63221740722656)},
			{Quantity: "air.pressure", Value: NumberVal(dlScaled(96800, 0.01))},
			{Quantity: "battery", Value: NumberVal(3.109)},
		},
	},
	{
		model: "decentlab-dl-lp8p", source: "dl-lp8p-codec.yaml, example 3",
		hex:     "02057800080c25",
		data:    dlData(1400, map[string]any{"battery_voltage": dlObj("Battery voltage", "V", 3.109)}),
		samples: []Sample{{Quantity: "battery", Value: NumberVal(3.109)}},
	},
	{
		// A probe in air: the water content, below 0, is out of
		// soil.moisture's range and Check drops it.
		model: "decentlab-dl-5tm", source: "dl-5tm-codec.yaml, example 1",
		hex: "02023b0003003702710c60",
		data: dlData(571, map[string]any{
			"dielectric_permittivity":  dlObj("Dielectric permittivity", "", 1.1),
			"volumetric_water_content": dlObj("Volumetric water content", "m³⋅m⁻³", -0.0215397767),
			"soil_temperature":         dlObj("Soil temperature", "°C", 22.5),
			"battery_voltage":          dlObj("Battery voltage", "V", 3.168),
		}),
		samples: []Sample{
			{Quantity: "soil.moisture", Value: NumberVal(dlScaled(-0.0215397767, 100))},
			{Quantity: "soil.temperature", Value: NumberVal(22.5)},
			{Quantity: "battery", Value: NumberVal(3.168)},
		},
	},
	{
		model: "decentlab-dl-5tm", source: "dl-5tm-codec.yaml, example 2",
		hex:     "02023b00020c60",
		data:    dlData(571, map[string]any{"battery_voltage": dlObj("Battery voltage", "V", 3.168)}),
		samples: []Sample{{Quantity: "battery", Value: NumberVal(3.168)}},
	},
	{
		// Depths 6 and 7 read all zero words: no sensor there.
		model: "decentlab-dl-smtp", source: "dl-smtp-codec.yaml, example 1",
		hex: "020b50000309018a8c09438a9809278a920b3c8aa50c9c8a8c11e08aa500000000000000000b3b",
		data: dlData(2896, map[string]any{
			"soil_moisture_at_depth_0":    dlObj("Soil moisture at depth 0", "", -0.39),
			"soil_temperature_at_depth_0": dlObj("Soil temperature at depth 0", "°C", 27),
			"soil_moisture_at_depth_1":    dlObj("Soil moisture at depth 1", "", -0.258),
			"soil_temperature_at_depth_1": dlObj("Soil temperature at depth 1", "°C", 27.12),
			"soil_moisture_at_depth_2":    dlObj("Soil moisture at depth 2", "", -0.314),
			"soil_temperature_at_depth_2": dlObj("Soil temperature at depth 2", "°C", 27.06),
			"soil_moisture_at_depth_3":    dlObj("Soil moisture at depth 3", "", 0.752),
			"soil_temperature_at_depth_3": dlObj("Soil temperature at depth 3", "°C", 27.25),
			"soil_moisture_at_depth_4":    dlObj("Soil moisture at depth 4", "", 1.456),
			"soil_temperature_at_depth_4": dlObj("Soil temperature at depth 4", "°C", 27),
			"soil_moisture_at_depth_5":    dlObj("Soil moisture at depth 5", "", 4.152),
			"soil_temperature_at_depth_5": dlObj("Soil temperature at depth 5", "°C", 27.25),
			"soil_moisture_at_depth_6":    dlObj("Soil moisture at depth 6", "", -5),
			"soil_temperature_at_depth_6": dlObj("Soil temperature at depth 6", "°C", -327.68),
			"soil_moisture_at_depth_7":    dlObj("Soil moisture at depth 7", "", -5),
			"soil_temperature_at_depth_7": dlObj("Soil temperature at depth 7", "°C", -327.68),
			"battery_voltage":             dlObj("Battery voltage", "V", 2.875),
		}),
		samples: []Sample{{Quantity: "battery", Value: NumberVal(2.875)}},
	},
	{
		model: "decentlab-dl-smtp", source: "dl-smtp-codec.yaml, example 2",
		hex:     "020b5000020b3b",
		data:    dlData(2896, map[string]any{"battery_voltage": dlObj("Battery voltage", "V", 2.875)}),
		samples: []Sample{{Quantity: "battery", Value: NumberVal(2.875)}},
	},
	{
		model: "decentlab-dl-atm41", source: "dl-atm41-codec.yaml, example 1",
		hex: "02035a0003800a8000800080008009812b8014810880b4a57c820c810980027fe8805680088004" + "0bf5",
		data: dlData(858, map[string]any{
			"solar_radiation":             dlObj("Solar radiation", "W⋅m⁻²", 10),
			"precipitation":               dlObj("Precipitation", "mm", 0),
			"lightning_strike_count":      dlObj("Lightning strike count", "", 0),
			"lightning_average_distance":  dlObj("Lightning average distance", "km", 0),
			"wind_speed":                  dlObj("Wind speed", "m⋅s⁻¹", 0.09),
			"wind_direction":              dlObj("Wind direction", "°", 29.9),
			"maximum_wind_speed":          dlObj("Maximum wind speed", "m⋅s⁻¹", 0.2),
			"air_temperature":             dlObj("Air temperature", "°C", 26.4),
			"vapor_pressure":              dlObj("Vapor pressure", "kPa", 1.8),
			"atmospheric_pressure":        dlObj("Atmospheric pressure", "kPa", 95.96),
			"relative_humidity":           dlObj("Relative humidity", "%", 52.4),
			"sensor_temperature_internal": dlObj("Sensor temperature (internal)", "°C", 26.5),
			"x_orientation_angle":         dlObj("X orientation angle", "°", 0.2),
			"y_orientation_angle":         dlObj("Y orientation angle", "°", -2.4),
			"compass_heading":             dlObj("Compass heading", "°", 86),
			"north_wind_speed":            dlObj("North wind speed", "m⋅s⁻¹", 0.08),
			"east_wind_speed":             dlObj("East wind speed", "m⋅s⁻¹", 0.04),
			"battery_voltage":             dlObj("Battery voltage", "V", 3.061),
		}),
		samples: []Sample{
			{Quantity: "air.temperature", Value: NumberVal(26.4)},
			{Quantity: "air.relativeHumidity", Value: NumberVal(52.4)},
			{Quantity: "air.pressure", Value: NumberVal(dlScaled(95.96, 10))},
			{Quantity: "wind.speed", Value: NumberVal(0.09)},
			{Quantity: "wind.direction", Value: NumberVal(29.9)},
			{Quantity: "battery", Value: NumberVal(3.061)},
		},
	},
	{
		model: "decentlab-dl-atm41", source: "dl-atm41-codec.yaml, example 2",
		hex:     "02035a00020bf5",
		data:    dlData(858, map[string]any{"battery_voltage": dlObj("Battery voltage", "V", 3.061)}),
		samples: []Sample{{Quantity: "battery", Value: NumberVal(3.061)}},
	},
	{
		model: "decentlab-dl-dlr2-004", source: "dl-dlr2-004-10-codec.yaml, example 1 (R 10: the default)",
		hex: "0208b200038bb80c60",
		data: dlData(2226, map[string]any{
			"current":         dlObj("Current", "mA", 13.73291015625),
			"battery_voltage": dlObj("Battery voltage", "V", 3.168),
		}),
		samples: []Sample{{Quantity: "battery", Value: NumberVal(3.168)}},
	},
	{
		model: "decentlab-dl-dlr2-004", source: "dl-dlr2-004-10-codec.yaml, example 2",
		hex:     "0208b200020c60",
		data:    dlData(2226, map[string]any{"battery_voltage": dlObj("Battery voltage", "V", 3.168)}),
		samples: []Sample{{Quantity: "battery", Value: NumberVal(3.168)}},
	},
	{
		model: "decentlab-dl-wrm", source: "dl-wrm-codec.yaml, example 1",
		hex: "021a10000764a079b104f904c40c60",
		data: dlData(6672, map[string]any{
			"air_temperature":     dlObj("Air temperature", "°C", 23.787670710307466),
			"air_humidity":        dlObj("Air humidity", "%", 47.536430914778364),
			"surface_temperature": dlObj("Surface temperature", "°C", 27.3),
			"head_temperature":    dlObj("Head temperature", "°C", 22),
			"battery_voltage":     dlObj("Battery voltage", "V", 3.168),
		}),
		samples: []Sample{
			{Quantity: "air.temperature", Value: NumberVal(23.787670710307466)},
			{Quantity: "air.relativeHumidity", Value: NumberVal(47.536430914778364)},
			{Quantity: "battery", Value: NumberVal(3.168)},
		},
	},
	{
		model: "decentlab-dl-wrm", source: "dl-wrm-codec.yaml, example 2",
		hex:     "021a1000040c60",
		data:    dlData(6672, map[string]any{"battery_voltage": dlObj("Battery voltage", "V", 3.168)}),
		samples: []Sample{{Quantity: "battery", Value: NumberVal(3.168)}},
	},
	{
		model: "decentlab-dl-iam", source: "dl-iam-codec.yaml, example 1",
		hex: "020bbd007f0b926a515d48bc4e0262006981c7000093d4000b0111",
		data: dlData(3005, map[string]any{
			"battery_voltage":                dlObj("Battery voltage", "V", 2.962),
			"air_temperature":                dlObj("Air temperature", "°C", 27.67833981841764),
			"air_humidity":                   dlObj("Air humidity", "%", 36.438544289311054),
			"barometric_pressure":            dlObj("Barometric pressure", "Pa", 96412),
			"ambient_light_visible_infrared": dlObj("Ambient light (visible + infrared)", "", 610),
			"ambient_light_infrared":         dlObj("Ambient light (infrared)", "", 105),
			"illuminance":                    dlObj("Illuminance", "lx", 678.76512),
			"co2_concentration":              dlObj("CO2 concentration", "ppm", 455),
			"co2_sensor_status":              dlObj("CO2 sensor status", "", 0),
			"raw_ir_reading":                 dlObj("Raw IR reading", "", 37844),
			"activity_counter":               dlObj("Activity counter", "", 11),
			"total_voc":                      dlObj("Total VOC", "ppb", 273),
		}),
		samples: []Sample{
			{Quantity: "battery", Value: NumberVal(2.962)},
			{Quantity: "air.temperature", Value: NumberVal(27.67833981841764)},
			{Quantity: "air.relativeHumidity", Value: NumberVal(36.438544289311054)},
			{Quantity: "air.pressure", Value: NumberVal(dlScaled(96412, 0.01))},
			{Quantity: "air.lightIntensity", Value: NumberVal(678.76512)},
			{Quantity: "air.co2", Value: NumberVal(455)},
			{Quantity: "action.motion.count", Value: NumberVal(11)},
			{Quantity: "air.tvoc", Value: NumberVal(273)},
		},
	},
	{
		model: "decentlab-dl-iam", source: "dl-iam-codec.yaml, example 2 (no CO2 group)",
		hex: "020bbd006f0b926a515d48bc4e02620069000b0111",
		data: dlData(3005, map[string]any{
			"battery_voltage":                dlObj("Battery voltage", "V", 2.962),
			"air_temperature":                dlObj("Air temperature", "°C", 27.67833981841764),
			"air_humidity":                   dlObj("Air humidity", "%", 36.438544289311054),
			"barometric_pressure":            dlObj("Barometric pressure", "Pa", 96412),
			"ambient_light_visible_infrared": dlObj("Ambient light (visible + infrared)", "", 610),
			"ambient_light_infrared":         dlObj("Ambient light (infrared)", "", 105),
			"illuminance":                    dlObj("Illuminance", "lx", 678.76512),
			"activity_counter":               dlObj("Activity counter", "", 11),
			"total_voc":                      dlObj("Total VOC", "ppb", 273),
		}),
		samples: []Sample{
			{Quantity: "battery", Value: NumberVal(2.962)},
			{Quantity: "air.temperature", Value: NumberVal(27.67833981841764)},
			{Quantity: "air.relativeHumidity", Value: NumberVal(36.438544289311054)},
			{Quantity: "air.pressure", Value: NumberVal(dlScaled(96412, 0.01))},
			{Quantity: "air.lightIntensity", Value: NumberVal(678.76512)},
			{Quantity: "action.motion.count", Value: NumberVal(11)},
			{Quantity: "air.tvoc", Value: NumberVal(273)},
		},
	},
	{
		model: "decentlab-dl-iam", source: "dl-iam-codec.yaml, example 3",
		hex:     "020bbd00010b92",
		data:    dlData(3005, map[string]any{"battery_voltage": dlObj("Battery voltage", "V", 2.962)}),
		samples: []Sample{{Quantity: "battery", Value: NumberVal(2.962)}},
	},
	{
		model: "decentlab-dl-ctd10", source: "dl-ctd10-codec.yaml, example 1",
		hex: "0207d9000390888081006400000c60",
		data: dlData(2009, map[string]any{
			"water_depth":             dlObj("Water depth", "mm", 4232),
			"temperature":             dlObj("Temperature", "°C", 12.9),
			"electrical_conductivity": dlObj("Electrical conductivity", "µS⋅cm⁻¹", 100),
			"freezing_flag":           dlObj("Freezing flag", "", 0),
			"battery_voltage":         dlObj("Battery voltage", "V", 3.168),
		}),
		samples: []Sample{
			{Quantity: "water.temperature.current", Value: NumberVal(12.9)},
			{Quantity: "battery", Value: NumberVal(3.168)},
		},
	},
	{
		model: "decentlab-dl-ctd10", source: "dl-ctd10-codec.yaml, example 2",
		hex:     "0207d900020c60",
		data:    dlData(2009, map[string]any{"battery_voltage": dlObj("Battery voltage", "V", 3.168)}),
		samples: []Sample{{Quantity: "battery", Value: NumberVal(3.168)}},
	},
	{
		model: "decentlab-dl-tbrg", source: "dl-tbrg-01-codec.yaml, example 1 (resolution 0.1: the default)",
		hex: "0202f8000300040258409a00000c54",
		data: dlData(760, map[string]any{
			"precipitation":            dlObj("Precipitation", "mm", 0.4),
			"precipitation_interval":   dlObj("Precipitation interval", "s", 600),
			"cumulative_precipitation": dlObj("Cumulative precipitation", "mm", 1653.8000000000002),
			"battery_voltage":          dlObj("Battery voltage", "V", 3.156),
		}),
		samples: []Sample{
			{Quantity: "rain.cumulative", Value: NumberVal(1653.8000000000002)},
			{Quantity: "battery", Value: NumberVal(3.156)},
		},
	},
	{
		model: "decentlab-dl-tbrg", source: "dl-tbrg-01-codec.yaml, example 2",
		hex:     "0202f800020c54",
		data:    dlData(760, map[string]any{"battery_voltage": dlObj("Battery voltage", "V", 3.156)}),
		samples: []Sample{{Quantity: "battery", Value: NumberVal(3.156)}},
	},
}

// TestDecentlabExamples checks the Data of each example against the
// vendor codec's output, bit for bit, and its samples; every shorter
// prefix of an example must fail with ErrTruncated (each example's flags
// name all the groups it carries, and nothing follows them).
func TestDecentlabExamples(t *testing.T) {
	for _, ex := range dlExamples {
		t.Run(ex.model+" "+ex.source, func(t *testing.T) {
			b := vecHex(t, ex.hex)
			res, err := builtin[ex.model].Decode(Input{FPort: 1, Bytes: b})
			if err != nil {
				t.Fatal(err)
			}
			if got := res.DataMap(); !reflect.DeepEqual(got, ex.data) {
				t.Errorf("data:\n got %v\nwant %v", got, ex.data)
			}
			if !reflect.DeepEqual(withoutKeys(res.Samples), ex.samples) {
				t.Errorf("samples: got %v, want %v", res.Samples, ex.samples)
			}
			if len(res.Warnings) != 0 {
				t.Errorf("warnings: %q", res.Warnings)
			}
			// Out-of-range samples are the catalogue's to drop, with a
			// warning each.
			kept, warnings, err := Check(append([]Sample(nil), res.Samples...))
			if err != nil {
				t.Fatalf("samples do not fit the catalogue: %v", err)
			}
			if len(kept)+len(warnings) != len(ex.samples) {
				t.Errorf("Check kept %d with warnings %q of %d samples", len(kept), warnings, len(ex.samples))
			}
			for n := range len(b) {
				if _, err := builtin[ex.model].Decode(Input{FPort: 1, Bytes: b[:n]}); !errors.Is(err, ErrTruncated) {
					t.Errorf("%d of %d bytes: got %v, want ErrTruncated", n, len(b), err)
				}
			}
		})
	}
}

// TestDecentlabParams checks the device variables that replace the vendor
// codecs' built-in parameters.
func TestDecentlabParams(t *testing.T) {
	for _, tc := range []struct {
		name, model, hex string
		vars             map[string]string
		key              string  // Data value checked
		want             float64 // its value
		err              error
	}{
		// DL-PR26 example 1 with a 0-10 bar transmitter: the count
		// 0x3e80 (16000) is (16000-16384)/32768 of the range.
		{name: "DL-PR26 Pmax=10", model: "decentlab-dl-pr26", hex: "02016700033e8060170c7f",
			vars: map[string]string{"Pmax": "10"}, key: "pressure", want: (16000.0 - 16384) / 32768 * 10},
		{name: "DL-PR26 Pmin=-1 Pmax=1", model: "decentlab-dl-pr26", hex: "020167000380006017" + "0c7f",
			vars: map[string]string{"Pmin": "-1", "Pmax": "1"}, key: "pressure", want: 0}, // mid count 0x8000: mid range
		{name: "DL-PR36 kp=1024", model: "decentlab-dl-pr36", hex: "02032b0003806797810c2b",
			vars: map[string]string{"kp": "1024"}, key: "pressure", want: 103.0 / 1024},
		{name: "DL-DLR2-004 R=100", model: "decentlab-dl-dlr2-004", hex: "0208b200038bb80c60",
			vars: map[string]string{"R": "100"}, key: "current", want: 1.373291015625},
		// DL-TBRG example 1 with a 0.2 mm bucket: 4 tips.
		{name: "DL-TBRG resolution=0.2", model: "decentlab-dl-tbrg", hex: "0202f8000300040258409a00000c54",
			vars: map[string]string{"resolution": "0.2"}, key: "precipitation", want: 4 * 0.2},
		{name: "unrelated variables are ignored", model: "decentlab-dl-pr36", hex: "02032b0003806797810c2b",
			vars: map[string]string{"site": "x"}, key: "pressure", want: 0.0125732421875},
		{name: "not a number", model: "decentlab-dl-pr26", hex: "02016700020c7f",
			vars: map[string]string{"Pmax": "ten"}, err: ErrInvalid},
		{name: "infinite", model: "decentlab-dl-pr26", hex: "02016700020c7f",
			vars: map[string]string{"Pmin": "-Inf"}, err: ErrInvalid},
		{name: "divisor 0", model: "decentlab-dl-pr36", hex: "02032b00020c2b",
			vars: map[string]string{"kp": "0"}, err: ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := builtin[tc.model].Decode(Input{FPort: 1, Bytes: vecHex(t, tc.hex), Variables: tc.vars})
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("got %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			obj, _ := res.DataMap()[tc.key].(map[string]any)
			if got := obj["value"]; got != tc.want {
				t.Errorf("%s: got %v, want %v", tc.key, got, tc.want)
			}
		})
	}
}

// TestDecentlabTables checks what Decode relies on: every group fits
// dlWords, every value has a conversion, a model has at most two
// parameters, and every mapped key is a value of the model.
func TestDecentlabTables(t *testing.T) {
	for _, name := range dlModels {
		m, ok := builtin[name].(*decentlabModel)
		if !ok {
			t.Fatalf("%s: not a Decentlab table", name)
		}
		if len(m.params) > dlP1-dlP0+1 {
			t.Errorf("%s: %d parameters", name, len(m.params))
		}
		keys := map[string]bool{}
		for bit, g := range m.groups {
			if g.words < 1 || g.words > dlMaxWords {
				t.Errorf("%s: group %d has %d words", name, bit, g.words)
			}
			for _, v := range g.values {
				if v.conv == nil {
					t.Errorf("%s: %s has no conversion", name, v.key)
				}
				keys[v.key+".value"] = true
			}
		}
		for _, mp := range m.maps {
			if !keys[mp.Key] {
				t.Errorf("%s: mapping of %s, which the model does not have", name, mp.Key)
			}
		}
	}
}

// dlModels are the Decentlab models, for the fuzzer.
var dlModels = []string{
	"decentlab-dl-pm", "decentlab-dl-trs12", "decentlab-dl-mbx",
	"decentlab-dl-sht35", "decentlab-dl-pr26", "decentlab-dl-pr36", "decentlab-dl-lp8p", "decentlab-dl-5tm",
	"decentlab-dl-smtp", "decentlab-dl-atm41", "decentlab-dl-dlr2-004", "decentlab-dl-wrm",
	"decentlab-dl-iam", "decentlab-dl-ctd10", "decentlab-dl-tbrg",
}

func FuzzDecentlab(f *testing.F) {
	// Seeds: the vectors and the examples, and testdata/fuzz/FuzzDecentlab,
	// made from them.
	vecSeedBytes(f, "decentlab-dl-pm-codec.json", "decentlab-dl-trs12-codec.json", "decentlab-dl-mbx-codec.json")
	for _, ex := range dlExamples {
		f.Add(vecHex(f, ex.hex))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range dlModels {
			vendorDecode(t, m, Input{FPort: 1, Bytes: b})
		}
	})
}

func BenchmarkDecentlab(b *testing.B) {
	vecBenchModels(b, "decentlab-dl-pm", "decentlab-dl-trs12", "decentlab-dl-mbx")
	// The other models: the first example of each (dlExamples).
	seen := map[string]bool{}
	for _, ex := range dlExamples {
		if seen[ex.model] {
			continue
		}
		seen[ex.model] = true
		in := Input{FPort: 1, Bytes: vecHex(b, ex.hex)}
		b.Run(ex.model, func(b *testing.B) {
			b.ReportAllocs()
			benchDecode(b, builtin[ex.model], in)
		})
	}
}
