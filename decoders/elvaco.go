package decoders

import (
	"fmt"
	"math"
	"strconv"
)

// Layout constants of the CMi4110 uplink.
const (
	cmi4110Port     = 2
	cmi4110MinLen   = 40
	cmi4110Standard = 0x00 // message format "Standard"
	mbusFiller      = 0x2F // idle filler between records (EN 13757-3)
)

// cmi4110 decodes the Elvaco CMi4110 / CMi4111 M-Bus LoRaWAN modules for
// Landis+Gyr UH50/T550 heat meters, message format Standard, per "CMi4110
// User's Manual" (Elvaco AB, §6 Messages) and EN 13757-3 (M-Bus data
// records). Values keep the reference codec's units: energy kWh, volume m³,
// power kW, flow m³/h, temperatures °C.
//
// The reference reads the flow digits as hexadecimal and only recognises
// the error-flag record in last position (vector file decoder_quirks); this
// decoder reads every BCD field as BCD and every record wherever it is.
var cmi4110 = Mapped{
	DecodeRecord: decodeCMi4110,
	Size:         8, // a standard message's eight records
	Map: []Mapping{
		{Key: "energy", Quantity: "metering.heat.total"},
		{Key: "power", Quantity: "metering.heat.power", Scale: 1000}, // kW → W
		{Key: "volume", Quantity: "metering.heat.volume"},
		{Key: "flow", Quantity: "metering.heat.flow"},
		{Key: "flow_temperature", Quantity: "metering.heat.flowTemperature"},
		{Key: "return_temperature", Quantity: "metering.heat.returnTemperature"},
	},
}

func decodeCMi4110(in Input, r *Record) error {
	if in.FPort != cmi4110Port {
		return fmt.Errorf("%w: cmi4110: unknown fPort %d (uplinks use fPort %d)", ErrInvalid, in.FPort, cmi4110Port)
	}
	b := in.Bytes
	if err := needBytes(b, cmi4110MinLen, "cmi4110 standard message"); err != nil {
		return err
	}
	if b[0] != cmi4110Standard {
		return fmt.Errorf("%w: cmi4110: message format %#02x not supported: configure the module for format Standard (0x00)", ErrInvalid, b[0])
	}
	for i := 1; i < len(b); {
		n, err := cmi4110Record(b[i:], r)
		if err != nil {
			return fmt.Errorf("cmi4110: record at byte %d: %w", i, err)
		}
		i += n
	}
	return nil
}

// cmi4110Record reads one M-Bus data record [DIF][DIFE…][VIF][VIFE][data]
// into r and returns its length.
func cmi4110Record(b []byte, r *Record) (int, error) {
	if b[0] == mbusFiller {
		return 1, nil
	}
	if err := needBytes(b, 2, "record header"); err != nil {
		return 0, err
	}
	dif := b[0]
	i := 1
	tariff := 0
	if dif&0x40 != 0 {
		return 0, fmt.Errorf("%w: stored (historic) value, DIF %#02x", ErrInvalid, dif)
	}
	for ext := dif&0x80 != 0; ext; {
		if err := needBytes(b, i+2, "DIFE"); err != nil {
			return 0, err
		}
		dife := b[i]
		i++
		if dife&0x4F != 0 {
			return 0, fmt.Errorf("%w: storage number or subunit in DIFE %#02x", ErrInvalid, dife)
		}
		tariff |= int(dife>>4) & 3
		ext = dife&0x80 != 0
	}
	vif := b[i]
	i++
	var vife byte
	if vif == 0xFD {
		if err := needBytes(b, i+1, "VIFE"); err != nil {
			return 0, err
		}
		vife = b[i]
		i++
	} else if vif&0x80 != 0 {
		return 0, fmt.Errorf("%w: VIF %#02x with extension", ErrInvalid, vif)
	}
	size, bcd, err := mbusDataSize(dif)
	if err != nil {
		return 0, err
	}
	if len(b) < i+size {
		// Formatted only on failure: this is the hot path of every record.
		return 0, needBytes(b, i+size, fmt.Sprintf("record DIF %#02x VIF %#02x", dif, vif))
	}
	raw := b[i : i+size]
	var v int64
	if bcd {
		if v, err = mbusBCD(raw); err != nil {
			return 0, err
		}
	} else {
		v = mbusInt(raw)
	}
	key, exp, err := cmi4110Quantity(vif, vife)
	if err != nil {
		return 0, err
	}
	if key == "error_flag" {
		// Flags are a bit field, not a signed number.
		v = int64(mbusUint(raw))
	}
	if tariff > 0 {
		key += "_tariff_" + strconv.Itoa(tariff)
	}
	r.Number(key, mbusScale(v, exp))
	return i + size, nil
}

// cmi4110Quantity names the value a VIF carries and the power of ten that
// brings it into the reference codec's unit (EN 13757-3 table of primary
// VIFs).
func cmi4110Quantity(vif, vife byte) (key string, exp int, err error) {
	n := int(vif & 0x07)
	switch {
	case vif == 0xFD && vife == 0x17:
		return "error_flag", 0, nil
	case vif <= 0x07: // energy, 10^(n-3) Wh
		return "energy", n - 6, nil // kWh
	case vif >= 0x10 && vif <= 0x17: // volume, 10^(n-6) m³
		return "volume", n - 6, nil
	case vif >= 0x28 && vif <= 0x2F: // power, 10^(n-3) W
		return "power", n - 6, nil // kW
	case vif >= 0x38 && vif <= 0x3F: // volume flow, 10^(n-6) m³/h
		return "flow", n - 6, nil
	case vif >= 0x58 && vif <= 0x5B: // flow temperature, 10^(nn-3) °C
		return "flow_temperature", int(vif&3) - 3, nil
	case vif >= 0x5C && vif <= 0x5F: // return temperature
		return "return_temperature", int(vif&3) - 3, nil
	case vif == 0x78: // fabrication number
		return "serial", 0, nil
	}
	if vif == 0xFD {
		return "", 0, fmt.Errorf("%w: unsupported VIF FD %#02x", ErrInvalid, vife)
	}
	return "", 0, fmt.Errorf("%w: unsupported VIF %#02x", ErrInvalid, vif)
}

// mbusDataSize returns the length of a record's data and whether it is BCD,
// from the DIF's data field (EN 13757-3 table 4).
func mbusDataSize(dif byte) (size int, bcd bool, err error) {
	switch dif & 0x0F {
	case 0x01, 0x02, 0x03, 0x04:
		return int(dif & 0x0F), false, nil
	case 0x06:
		return 6, false, nil
	case 0x07:
		return 8, false, nil
	case 0x09, 0x0A, 0x0B, 0x0C:
		return int(dif&0x0F) - 8, true, nil
	case 0x0E:
		return 6, true, nil
	}
	return 0, false, fmt.Errorf("%w: unsupported DIF data field %#02x", ErrInvalid, dif)
}

// mbusBCD reads packed BCD, least significant byte first. A high nibble of
// 0xF in the most significant byte marks a negative value (EN 13757-3
// annex B); any other non-decimal nibble is an error.
func mbusBCD(b []byte) (int64, error) {
	var v int64
	neg := false
	for i := len(b) - 1; i >= 0; i-- {
		hi, lo := b[i]>>4, b[i]&0x0F
		if i == len(b)-1 && hi == 0x0F {
			neg, hi = true, 0
		}
		if hi > 9 || lo > 9 {
			return 0, fmt.Errorf("%w: %X is not BCD", ErrInvalid, b)
		}
		v = v*100 + int64(hi)*10 + int64(lo)
	}
	if neg {
		v = -v
	}
	return v, nil
}

// mbusUint reads an unsigned little-endian integer of up to 8 bytes.
func mbusUint(b []byte) uint64 {
	var v uint64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// mbusInt reads a signed (two's complement) little-endian integer.
func mbusInt(b []byte) int64 {
	v := mbusUint(b)
	if shift := 64 - 8*uint(len(b)); shift > 0 && shift < 64 {
		return int64(v<<shift) >> shift
	}
	return int64(v)
}

// mbusScale applies a power of ten. Division by an exact power of ten
// yields the float64 nearest to the decimal value, the same number a JSON
// reader gives for the reference's output.
func mbusScale(v int64, exp int) float64 {
	if exp >= 0 {
		return float64(v) * math.Pow10(exp)
	}
	return float64(v) / math.Pow10(-exp)
}
