package decoders

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// Ports and field types of the iOKE868 uplink.
const (
	ioke868PortStatus    = 3
	ioke868PortMeter     = 5
	ioke868Segmented     = 0x40 // port flag: a segmentation header byte precedes the payload
	ioke868FieldStatus   = 0x00
	ioke868FieldTime     = 0x01
	ioke868ObisUnit      = 0x40
	ioke868ObisNoUnit    = 0x41
	ioke868ObisString    = 0x42
	ioke868StatusLen     = 28
	ioke868TimeLayout    = "Mon, 02 Jan 2006 15:04:05 GMT" // RFC 1123, always UTC
	ioke868SegmentedWarn = "WARNING: decoding of segmented payload - values can be incorrect or incomplete"
	dlmsUnitWh           = 30
	dlmsUnitW            = 27
)

// dlmsUnits names the DLMS/COSEM unit codes (IEC 62056-62) a meter reader
// reports for electricity, heat, gas and water; "" for the others.
var dlmsUnits = [256]string{
	1: "a", 2: "mo", 3: "wk", 4: "d", 5: "h", 6: "min", 7: "s", 8: "°", 9: "°C",
	11: "m", 12: "m/s", 13: "m³", 14: "m³", 15: "m³/h", 16: "m³/h", 17: "m³/d", 18: "m³/d",
	19: "l", 20: "kg", 21: "N", 22: "Nm", 23: "Pa", 24: "bar", 25: "J", 26: "J/h",
	27: "W", 28: "VA", 29: "var", 30: "Wh", 31: "VAh", 32: "varh", 33: "A", 34: "C",
	35: "V", 36: "V/m", 37: "F", 38: "Ω", 44: "Hz", 52: "K", 56: "%", 57: "Ah",
	255: "count",
}

// Texts of the info field (type 0x00).
var (
	ioke868MeterTypes = []string{"unknown", "import", "export", "import+export"}
	ioke868InputTypes = []string{"unknown protocol", "SML protocol", "IEC protocol", "reserved"}
	ioke868InputState = []string{"ok", "no input", "input file error", "input file incomplete", "pairing error"}
)

// ioke868StateBits are the status message's state bits: a set bit reports
// the first (negative) text.
var ioke868StateBits = []struct {
	bit      uint
	key      string
	set, clr string
}{
	{0, "Status_LoRaWAN_Activation_State", "not activated", "activated"},
	{1, "Status_Network_Time_State", "not synchronized", "synchronized"},
	{2, "Status_System_Time_State", "not synchronized", "synchronized"},
	{4, "Status_LoRaWAN_Configuration_State", "not available", "available"},
	{6, "Status_Calendar_Event_List_State", "is empty", "contains at least one item"},
	{7, "Status_OBIS_ID_Filter_List_State", "is empty", "contains at least one item"},
}

// ioke868 decodes the IMST iOKE868 optical smart-meter reader (iO881A), per
// "iOKE868 LoRaWAN Smart Meter Reader - User Manual" and its payload
// description (IMST GmbH, https://wireless-solutions.de/downloadfile/ioke868-documents/).
// Meter data (fPort 5) is a sequence of [type][length][data] fields; OBIS
// objects become OBIS_IDs entries. fPort 3 is the device status.
var ioke868 = Func(decodeIOKE868)

func decodeIOKE868(in Input) (Result, error) {
	port, b := in.FPort, in.Bytes
	var warnings []string
	if port&ioke868Segmented != 0 {
		if err := needBytes(b, 1, "ioke868 segmentation header"); err != nil {
			return Result{}, err
		}
		b, port = b[1:], port&^ioke868Segmented
		warnings = append(warnings, ioke868SegmentedWarn)
	}
	// An OBIS object, the most common field, writes seven values in twelve
	// bytes or more; a status message writes 13 values in 28 bytes.
	rec := NewRecord(4 + len(b)/2)
	switch port {
	case ioke868PortMeter:
		samples, w, err := ioke868Meter(b, rec)
		if err != nil {
			return Result{}, err
		}
		return Result{Record: rec, Samples: samples, Warnings: append(warnings, w...)}, nil
	case ioke868PortStatus:
		if err := ioke868Status(b, rec); err != nil {
			return Result{}, err
		}
		return Result{Record: rec, Warnings: warnings}, nil
	}
	return Result{}, fmt.Errorf("%w: ioke868: unknown fPort %d", ErrInvalid, in.FPort)
}

// ioke868Meter reads a meter data message into r: OBIS_IDs, a list of the
// OBIS objects, and general_info from the other fields. Info fields may
// come between OBIS objects, and a list is written in one go, so they are
// kept, the last of each kind as in the vendor codec, and written after.
func ioke868Meter(b []byte, r *Record) ([]Sample, []string, error) {
	var status, clock, meterID []byte
	var samples []Sample
	var warnings []string
	r.Array("OBIS_IDs")
	for i := 0; i < len(b); {
		if err := needBytes(b[i:], 2, "ioke868 field header"); err != nil {
			return nil, nil, err
		}
		typ, n := b[i], int(b[i+1])
		if len(b)-i-2 < n {
			// The message only on failure: fmt in needBytes's argument
			// would allocate on every field.
			return nil, nil, needBytes(b[i+2:], n, fmt.Sprintf("ioke868 field %#02x", typ))
		}
		f := b[i+2 : i+2+n]
		i += 2 + n
		switch {
		case typ == ioke868FieldStatus:
			if err := needBytes(f, 2, "ioke868 info field"); err != nil {
				return nil, nil, err
			}
			status = f
		case typ == ioke868FieldTime:
			if err := needBytes(f, 4, "ioke868 time field"); err != nil {
				return nil, nil, err
			}
			clock = f
		case typ>>4 == 0x1:
			meterID = f
		case typ >= ioke868ObisUnit && typ <= ioke868ObisString:
			s, ok, err := ioke868Obis(typ, f, r)
			if err != nil {
				return nil, nil, err
			}
			if ok {
				samples = append(samples, s)
			}
		default:
			// Fields carry their length, so an unknown one can be skipped.
			warnings = append(warnings, fmt.Sprintf("ioke868: field type %#02x not decoded, skipped", typ))
		}
	}
	r.End()
	r.Object("general_info")
	if status != nil {
		ioke868Info(status, r)
	}
	if clock != nil {
		r.String("Time", ioke868Time(binary.BigEndian.Uint32(clock)))
		r.String("Time_Origin", "device time")
	}
	if meterID != nil {
		// One buffer for "33-34 ( 34 )": the vendor codec's layout.
		id := make([]byte, 0, 4*len(meterID)+5)
		id = ioke868AppendDashHex(id, meterID)
		id = append(id, " ( "...)
		id = ioke868AppendPrintable(id, meterID)
		id = append(id, " )"...)
		r.String("MeterID", string(id))
	}
	r.End()
	return samples, warnings, nil
}

// ioke868Info writes the info field, at least two bytes: meter and input
// type, then the state of the optical input.
func ioke868Info(f []byte, r *Record) {
	state := "unknown"
	if int(f[1]) < len(ioke868InputState) {
		state = ioke868InputState[f[1]]
	}
	r.Number("InfoByte", float64(f[0]))
	r.Number("StatusByte", float64(f[1]))
	r.String("MeterType", ioke868MeterTypes[f[0]&0x03])
	r.String("InputType", ioke868InputTypes[f[0]>>2&0x03])
	r.String("InfraredInputStatus", state)
}

// ioke868Obis writes one OBIS object as an element of the open list: group
// mask, OBIS groups, then (0x40) unit code, scaler and unsigned mantissa,
// (0x41) scaler and mantissa, or (0x42) an ASCII number. It returns a
// sample for the registers the catalogue has.
func ioke868Obis(typ byte, f []byte, r *Record) (Sample, bool, error) {
	if err := needBytes(f, 1, "ioke868 OBIS group mask"); err != nil {
		return Sample{}, false, err
	}
	mask := f[0]
	ng := bits.OnesCount8(mask & 0xFC)
	if err := needBytes(f, 1+ng, "ioke868 OBIS groups"); err != nil {
		return Sample{}, false, err
	}
	groups := f[1 : 1+ng]
	var id [6 * 4]byte // at most six groups of "255_"
	obisID := id[:0]
	for k, g := range groups {
		if k > 0 {
			obisID = append(obisID, '_')
		}
		obisID = strconv.AppendUint(obisID, uint64(g), 10)
	}
	r.Object("")
	defer r.End()
	r.Number("GroupMask", float64(mask))
	r.String("OBIS_ID", string(obisID))
	rest := f[1+ng:]
	if typ == ioke868ObisString {
		r.String("rawValue", string(ioke868AppendDashHex(nil, rest)))
		r.String("stringValue", string(ioke868AppendPrintable(nil, rest)))
		// An unreadable number keeps the raw text but no value.
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(rest)), 64); err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) {
			r.Number("value", v)
		}
		return Sample{}, false, nil
	}
	unit := -1
	if typ == ioke868ObisUnit {
		if err := needBytes(rest, 1, "ioke868 OBIS unit"); err != nil {
			return Sample{}, false, err
		}
		unit = int(rest[0])
		name := dlmsUnits[rest[0]]
		if name == "" {
			name = "unit " + strconv.Itoa(unit)
		}
		r.String("unit", name)
		rest = rest[1:]
	}
	if err := needBytes(rest, 1, "ioke868 OBIS scaler"); err != nil {
		return Sample{}, false, err
	}
	scaler := int(int8(rest[0]))
	mant := rest[1:]
	// Meters pad the mantissa with leading zero bytes (9 in the vendor's
	// example); only significant bytes count against 64 bits.
	for len(mant) > 8 && mant[0] == 0 {
		mant = mant[1:]
	}
	if len(mant) > 8 {
		return Sample{}, false, fmt.Errorf("%w: ioke868: %d-byte OBIS value exceeds 64 bits", ErrInvalid, len(mant))
	}
	var m uint64
	for _, c := range mant {
		m = m<<8 | uint64(c)
	}
	// Dividing by an exact power of ten gives the float64 nearest to the
	// decimal value, which is what rounding to -scaler decimals yields.
	v := float64(m) * math.Pow10(scaler)
	if scaler < 0 {
		v = float64(m) / math.Pow10(-scaler)
	}
	r.Number("Scaler", float64(scaler))
	r.Number("rawValue", float64(m))
	r.Number("value", v)
	s, ok := ioke868Sample(mask, groups, unit, v)
	return s, ok, nil
}

// ioke868Sample maps the electricity registers the catalogue has, where
// the meter sent all six OBIS groups and a unit: 1-x:1.8.0 (active energy
// import, total over tariffs) and 1-x:16.7.0 (sum active power).
func ioke868Sample(mask byte, g []byte, unit int, v float64) (Sample, bool) {
	if mask&0xFC != 0xFC || len(g) != 6 || g[0] != 1 {
		return Sample{}, false
	}
	switch {
	case g[2] == 1 && g[3] == 8 && g[4] == 0 && unit == dlmsUnitWh:
		return Sample{Quantity: "metering.electricity.total", Value: NumberVal(v / 1000)}, true
	case g[2] == 16 && g[3] == 7 && g[4] == 0 && unit == dlmsUnitW:
		return Sample{Quantity: "metering.electricity.power", Value: NumberVal(v)}, true
	}
	return Sample{}, false
}

// ioke868Status reads the 28-byte device status message into r.
func ioke868Status(b []byte, r *Record) error {
	if err := needBytes(b, ioke868StatusLen, "ioke868 status"); err != nil {
		return err
	}
	le := binary.LittleEndian
	var fw [7]byte // "255.255"
	version := strconv.AppendUint(fw[:0], uint64(b[5]), 10)
	version = append(version, '.')
	version = strconv.AppendUint(version, uint64(b[4]), 10)
	r.String("Status_Time", ioke868Time(le.Uint32(b[0:4])))
	r.String("Status_Firmware_Version", string(version))
	r.String("Status_Last_Sync_Time", ioke868Time(le.Uint32(b[6:10])))
	r.Number("Status_Reset_Counter", float64(le.Uint32(b[10:14])))
	r.Number("Status_Correct_Received_Meter_Files_Counter", float64(le.Uint32(b[16:20])))
	r.Number("Status_Incorrect_Received_Meter_Files_Counter", float64(le.Uint32(b[20:24])))
	r.Number("Status_Uploaded_Meter_Data_Messages_Counter", float64(le.Uint32(b[24:28])))
	state := le.Uint16(b[14:16])
	for _, sb := range ioke868StateBits {
		text := sb.clr
		if state&(1<<sb.bit) != 0 {
			text = sb.set
		}
		r.String(sb.key, text)
	}
	return nil
}

// ioke868Time renders Unix seconds as an RFC 1123 date in GMT.
func ioke868Time(secs uint32) string {
	return time.Unix(int64(secs), 0).UTC().Format(ioke868TimeLayout)
}

// ioke868AppendDashHex appends b as lower-case hex pairs joined by dashes.
func ioke868AppendDashHex(dst, b []byte) []byte {
	const digits = "0123456789abcdef"
	for i, c := range b {
		if i > 0 {
			dst = append(dst, '-')
		}
		dst = append(dst, digits[c>>4], digits[c&0x0f])
	}
	return dst
}

// ioke868AppendPrintable appends b as text with every byte outside
// printable ASCII replaced by '?', so a garbled meter id cannot put invalid
// UTF-8 or control characters into a stored string.
func ioke868AppendPrintable(dst, b []byte) []byte {
	for _, c := range b {
		if c < 0x20 || c > 0x7E {
			c = '?'
		}
		dst = append(dst, c)
	}
	return dst
}
