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

// kellerChannelNames names the channels of a function-1 measurement frame
// for each connection type (ct) whose channel list the vendor documents;
// index = bit number in the channel bitmap. Pressures are bar, temperatures
// °C.
var kellerChannelNames = map[byte][]string{
	// RS485 & Baro (P1-PB) & digital input 1.
	3: {"Pd (P1-PBaro)", "P1", "P2", "T", "TOB1", "TOB2", "PBaro", "TBaro"},
}

// kellerEpoch is the origin of the device clock in the function-12 frame.
var kellerEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// kellerUnsupported is the reference codec's warning for function codes it
// does not decode; kept verbatim so dashboards built on it keep working.
const kellerUnsupported = "This function code is not supported in this decoder."

// kellerMappings lift the level-probe values onto the catalogue. The
// differential pressure P1-PBaro is the water column above the probe; the
// probe's own temperature sensor (TOB1) is in the water.
var kellerMappings = []Mapping{
	{Key: "Pd (P1-PBaro)", Quantity: "water.pressure", Scale: 1000}, // bar → hPa
	{Key: "TOB1", Quantity: "water.temperature.current"},
	{Key: "PBaro", Quantity: "air.pressure", Scale: 1000}, // bar → hPa
	{Key: "battery_voltage", Quantity: "battery"},
	{Key: "battery_capacity_percentage", Quantity: "batteryLevel"},
}

// keller decodes the Keller ADT1 and ARC1 remote transmitters (box and tube)
// as described in "KELLER LoRa payload"
// (https://docs.kolibricloud.ch/sending-technology/lora-technology/keller-lora-payload/)
// and "ADT1 - LoRa data communication protocol" (KELLER, V02/2020).
var keller = Func(decodeKeller)

func decodeKeller(in Input) (Result, error) {
	b := in.Bytes
	if err := needBytes(b, 1, "keller frame"); err != nil {
		return Result{}, err
	}
	// Room for a measurement frame of the documented connection type (3
	// header keys, 3 measurement keys, 8 channels) without growing.
	rec := NewRecord(14)
	rec.Number("port", float64(in.FPort))
	rec.String("payload", kellerHex(b))
	rec.Number("func", float64(b[0]))
	var warnings []string
	switch b[0] {
	case 1:
		w, err := kellerMeasurements(b, rec)
		if err != nil {
			return Result{}, err
		}
		warnings = append(warnings, w...)
	case 12:
		if err := kellerInfo(b, rec); err != nil {
			return Result{}, err
		}
	default:
		warnings = append(warnings, kellerUnsupported)
	}
	return Result{Record: rec, Samples: rec.ApplyMappings(kellerMappings), Warnings: warnings}, nil
}

// kellerMeasurements reads function 1: connection type, channel bitmap and
// one float32 per set bit, lowest channel first.
func kellerMeasurements(b []byte, r *Record) ([]string, error) {
	if err := needBytes(b, 4, "keller measurement header"); err != nil {
		return nil, err
	}
	ct := b[1]
	mask := binary.BigEndian.Uint16(b[2:4])
	n := bits.OnesCount16(mask)
	if len(b) < 4+4*n {
		// The message is built only on failure: a Sprintf in needBytes's
		// argument would allocate on every frame.
		return nil, needBytes(b, 4+4*n, fmt.Sprintf("keller measurement with %d channels", n))
	}
	r.Number("ct", float64(ct))
	var bitmap [16]byte // the mask as the reference prints it, bit 15 first
	for i := range bitmap {
		bitmap[i] = '0' + byte(mask>>(15-i)&1)
	}
	r.String("channel", string(bitmap[:]))
	r.Number("channelCount", float64(n))
	names := kellerChannelNames[ct]
	var warnings []string
	off := 4
	for ch := 0; ch < 16; ch++ {
		if mask&(1<<ch) == 0 {
			continue
		}
		// Widening float32 to float64 is exact, as in the reference.
		v := float64(math.Float32frombits(binary.BigEndian.Uint32(b[off : off+4])))
		off += 4
		var name string
		if ch < len(names) {
			name = names[ch]
		} else {
			name = "channel_" + strconv.Itoa(ch)
			warnings = append(warnings, fmt.Sprintf("connection type %d channel %d has no documented name; stored as %s", ct, ch, name))
		}
		r.Number(name, v)
	}
	return warnings, nil
}

// kellerInfo reads function 12, the device information frame.
func kellerInfo(b []byte, r *Record) error {
	if err := needBytes(b, 20, "keller device information"); err != nil {
		return err
	}
	r.String("class_group_text", fmt.Sprintf("%02d.%02d", b[2], b[3]))
	r.String("sw_version_text", fmt.Sprintf("%02d.%02d", b[4], b[5]))
	r.Number("serial_number", float64(binary.BigEndian.Uint32(b[6:10])))
	secs := binary.BigEndian.Uint32(b[10:14])
	r.String("device_local_datetime", kellerEpoch.Add(time.Duration(secs)*time.Second).Format(time.DateTime))
	r.Number("battery_voltage", float64(math.Float32frombits(binary.BigEndian.Uint32(b[14:18]))))
	r.Number("battery_capacity_percentage", float64(b[18]))
	r.Number("humidity_percentage", float64(b[19]))
	return nil
}

// kellerHex is the payload in upper-case hex, as the reference codec echoes
// it; one allocation, where hex.EncodeToString and strings.ToUpper take two.
func kellerHex(b []byte) string {
	const digits = "0123456789ABCDEF"
	var sb strings.Builder
	sb.Grow(2 * len(b))
	for _, c := range b {
		sb.WriteByte(digits[c>>4])
		sb.WriteByte(digits[c&0x0f])
	}
	return sb.String()
}
