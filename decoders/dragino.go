package decoders

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
)

// Dragino LHT65 / LHT65N and LHT52 temperature-humidity sensors and the
// LSE01 soil sensor (the LHT52's own sources are on decodeLHT52).
//
// Sources: Dragino "LHT65 LoRaWAN Temperature & Humidity Sensor User
// Manual" and "LHT65N ... User Manual" (uplink payload, fPort 2), Dragino
// "LSE01 LoRaWAN Soil Moisture & EC Sensor User Manual"
// (http://wiki.dragino.com), and the layouts in
// testdata/vectors/ttn-core/dragino-*.json. Both send an 11-byte frame on
// fPort 2, big-endian; the top two bits of the battery word are a status.

// draginoFrame returns the 11-byte measurement frame of a device that
// sends nothing else: any port but 2 is rejected, as the vendor codecs do
// ("unknown FPort").
func draginoFrame(name string, in Input) ([]byte, error) {
	if in.FPort != 2 {
		return nil, fmt.Errorf("%s: unknown FPort %d (measurements come on fPort 2): %w", name, in.FPort, ErrInvalid)
	}
	return in.Bytes, draginoLength(name, in.Bytes)
}

func draginoLength(name string, b []byte) error { return draginoSize(name, b, 11) }

// draginoSize checks a fixed-size frame: shorter is cut off, longer is not
// the frame the port carries.
func draginoSize(name string, b []byte, n int) error {
	switch {
	case len(b) < n:
		return fmt.Errorf("%s: %d bytes, the frame has %d: %w", name, len(b), n, ErrTruncated)
	case len(b) > n:
		return fmt.Errorf("%s: %d bytes, the frame has %d: %w", name, len(b), n, ErrInvalid)
	}
	return nil
}

// draginoBatV is the battery in V from the low 14 bits of a word in mV.
func draginoBatV(b []byte) float64 {
	return float64(binary.BigEndian.Uint16(b)&0x3FFF) / 1000
}

// draginoS16 reads a signed big-endian 16-bit value.
func draginoS16(b []byte) float64 { return float64(int16(binary.BigEndian.Uint16(b))) }

// LHT65 external sensor types (byte 6, low nibble) and their Work_mode
// strings, as the vendor codec names them ("" where it sets none).
var lht65ExtModes = [16]string{
	4:  "Interrupt Sensor send",
	5:  "Illumination Sensor",
	6:  "ADC Sensor",
	7:  "Interrupt Sensor count",
	8:  "Interrupt Sensor count",
	9:  "DS18B20 & timestamp",
	15: "DS18B20ID",
}

// decodeLHT65 decodes the LHT65 and LHT65N periodic uplink. Differences
// from the vendor codec, on inputs no vector covers: a frame that is not 11
// bytes is an error rather than an empty result; a poll reply (byte 6 bit
// 6, the datalog the device resends on request) is an error too, so the
// uplink is kept as a dead letter instead of dropped; the 32-bit counter and
// timestamp of external types 8 and 9 are unsigned (the codec's 32-bit
// shifts make them negative from 2^31).
func decodeLHT65(in Input, r *Record) error {
	const name = "dragino lht65"
	b, err := draginoFrame(name, in)
	if err != nil {
		return err
	}
	ext := b[6] & 0x0F
	if b[6]&0x40 != 0 {
		return fmt.Errorf("%s: poll reply (datalog) frames are not decoded: %w", name, ErrInvalid)
	}
	if ext == 9 {
		// The DS18B20 reading replaces the battery voltage; the status
		// bits move to byte 4.
		r.Number("TempC_DS", draginoS16(b[0:2])/100)
		r.Number("Bat_status", float64(b[4]>>6))
	} else {
		r.Number("BatV", draginoBatV(b[0:2]))
		r.Number("Bat_status", float64(b[0]>>6))
	}
	if ext != 15 {
		r.Number("TempC_SHT", draginoS16(b[2:4])/100)
		r.Number("Hum_SHT", float64(binary.BigEndian.Uint16(b[4:6])&0x0FFF)/10)
	}
	if b[6]&0x80 != 0 {
		r.String("No_connect", "Sensor no connection")
	}
	if mode := lht65ExtModes[ext]; mode != "" {
		r.String("Work_mode", mode)
	}
	switch ext {
	case 0:
		r.String("Ext_sensor", "No external sensor")
	case 1:
		r.String("Ext_sensor", "Temperature Sensor")
		r.Number("TempC_DS", draginoS16(b[7:9])/100)
	case 4:
		r.String("Exti_pin_level", draginoText(b[7] != 0, "High", "Low"))
		r.String("Exti_status", draginoText(b[8] != 0, "True", "False"))
	case 5:
		r.Number("ILL_lx", float64(binary.BigEndian.Uint16(b[7:9])))
	case 6:
		r.Number("ADC_V", float64(binary.BigEndian.Uint16(b[7:9]))/1000)
	case 7:
		r.Number("Exit_count", float64(binary.BigEndian.Uint16(b[7:9])))
	case 8:
		r.Number("Exit_count", float64(binary.BigEndian.Uint32(b[7:11])))
	case 9:
		r.Number("Systimestamp", float64(binary.BigEndian.Uint32(b[7:11])))
	case 15:
		// The probe's 64-bit ROM id, split over bytes 2-5 and 7-10, as
		// the codec prints it: lower-case hex, each byte followed by a
		// space.
		const digits = "0123456789abcdef"
		var id [24]byte
		for i, c := range [8]byte{b[2], b[3], b[4], b[5], b[7], b[8], b[9], b[10]} {
			id[3*i], id[3*i+1], id[3*i+2] = digits[c>>4], digits[c&0x0F], ' '
		}
		r.String("ID", string(id[:]))
	}
	return nil
}

// draginoText is yes if set, else no: the codec's texts for a flag.
func draginoText(set bool, yes, no string) string {
	if set {
		return yes
	}
	return no
}

// lht65Map: the DS18B20 probe (TempC_DS) hangs on a cable wherever it is
// put (fridge, water, soil), so it stays in Data only.
var lht65Map = []Mapping{
	{Key: "BatV", Quantity: "battery"},
	{Key: "TempC_SHT", Quantity: "air.temperature"},
	{Key: "Hum_SHT", Quantity: "air.relativeHumidity"},
	{Key: "ILL_lx", Quantity: "air.lightIntensity"},
}

// decodeLSE01 decodes the LSE01 uplink. It returns numbers where the
// vendor codec returns strings (TempC_DS18B20, water_SOIL, temp_SOIL, via
// toFixed), and reads a negative soil temperature as two's complement: the
// codec's (raw - 0xFFFF)/100 is 0.01 °C off (decoder_quirks of
// dragino-lse01-codec.json). Byte 10 (mode and flags) is not decoded, as in
// the codec.
func decodeLSE01(in Input, r *Record) error {
	const name = "dragino lse01"
	b, err := draginoFrame(name, in)
	if err != nil {
		return err
	}
	r.Number("Bat", draginoBatV(b[0:2]))
	r.Number("TempC_DS18B20", draginoS16(b[2:4])/10)
	r.Number("water_SOIL", float64(binary.BigEndian.Uint16(b[4:6]))/100)
	r.Number("temp_SOIL", draginoS16(b[6:8])/100)
	r.Number("conduct_SOIL", float64(binary.BigEndian.Uint16(b[8:10])))
	return nil
}

var lse01Map = []Mapping{
	{Key: "Bat", Quantity: "battery"},
	{Key: "water_SOIL", Quantity: "soil.moisture"},
	{Key: "temp_SOIL", Quantity: "soil.temperature"},
	{Key: "conduct_SOIL", Quantity: "soil.ec", Scale: 0.001}, // µS/cm -> dS/m
}

// decodeLHT52 decodes the LHT52 uplinks. Source: Dragino "LHT52 LoRaWAN
// Temperature & Humidity Sensor User Manual" (wiki.dragino.com, section
// 2.4 Uplink Payload) for the ports and values, and the Dragino codec in
// The Things Network device repository (vendor/dragino/lht52.js) for the
// Data keys. All values are big-endian:
//   - fPort 2, 11 bytes: built-in temperature (int16, 0.01 °C), humidity
//     (0.1 %), external DS18B20 temperature (int16, 0.01 °C), Ext (the
//     external sensor type), the device's Unix time (uint32);
//   - fPort 4, 8 bytes: the DS18B20 probe's ROM id;
//   - fPort 5, 7 bytes: device status (model, firmware, band, sub-band,
//     battery in mV).
//
// Differences from the codec: a frame of the wrong size is an error, not
// {Status: "RPL data or sensor reset"}, so it is kept as a dead letter; a
// datalog frame (fPort 3) is an error too, for the same reason: the manual
// gives its entry size (11 bytes) but not its field order, and the one
// vendor codec that reads it puts the humidity where fPort 2 has the
// probe temperature, so no value of it is trusted yet.
// Systimestamp is left in Data and the samples keep the uplink time: the
// device clock is only right once the network has synchronised it.
func decodeLHT52(in Input, r *Record) error {
	const name = "dragino lht52"
	b := in.Bytes
	switch in.FPort {
	case 2:
		if err := draginoLength(name, b); err != nil {
			return err
		}
		// The humidity is read signed, as the codec reads it: a negative
		// one is then dropped by the catalogue's range, not wrapped.
		r.Number("TempC_SHT", draginoS16(b[0:2])/100)
		r.Number("Hum_SHT", draginoS16(b[2:4])/10)
		r.Number("TempC_DS", draginoS16(b[4:6])/100)
		r.Number("Ext", float64(b[6]))
		r.Number("Systimestamp", float64(binary.BigEndian.Uint32(b[7:11])))
		return nil
	case 3:
		return fmt.Errorf("%s: datalog frames (fPort 3) are not decoded, their field order is not documented; the uplink is kept for replay: %w", name, ErrInvalid)
	case 4:
		if err := draginoSize(name, b, 8); err != nil {
			return err
		}
		var id [16]byte
		hex.Encode(id[:], b)
		r.String("DS18B20_ID", string(id[:]))
		return nil
	case 5:
		if err := draginoSize(name, b, 7); err != nil {
			return err
		}
		// The codec prints the firmware word in hex, padded to two
		// digits only: 0x0100 (v1.0.0) is "100".
		v := binary.BigEndian.Uint16(b[1:3])
		var buf [4]byte
		fw := buf[:0]
		if v < 0x10 {
			fw = append(fw, '0')
		}
		fw = strconv.AppendUint(fw, uint64(v), 16)
		r.Number("Sensor_Model", float64(b[0]))
		r.String("Firmware_Version", string(fw))
		r.Number("Freq_Band", float64(b[3]))
		r.Number("Sub_Band", float64(b[4]))
		r.Number("Bat_mV", float64(binary.BigEndian.Uint16(b[5:7])))
		return nil
	}
	return fmt.Errorf("%s: unknown FPort %d (measurements come on fPort 2, status on 5): %w", name, in.FPort, ErrInvalid)
}

// lht52Map: as for the LHT65, the cable probe (TempC_DS) stays in Data.
var lht52Map = []Mapping{
	{Key: "TempC_SHT", Quantity: "air.temperature"},
	{Key: "Hum_SHT", Quantity: "air.relativeHumidity"},
	{Key: "Bat_mV", Quantity: "battery", Scale: 0.001}, // mV -> V
}

// Each record is sized for its model's longest frame, so it never grows:
// 8 values for an LHT65 with an interrupt sensor, 5 for the others.
var (
	draginoLHT52 = Mapped{DecodeRecord: decodeLHT52, Map: lht52Map, Size: 5}
	draginoLHT65 = Mapped{DecodeRecord: decodeLHT65, Map: lht65Map, Size: 8}
	draginoLSE01 = Mapped{DecodeRecord: decodeLSE01, Map: lse01Map, Size: 5}
)
