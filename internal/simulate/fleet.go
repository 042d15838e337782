package simulate

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/sensorgate/sensorgate/devices"
)

// Formats the simulator speaks.
const (
	ChirpStackV4 = "chirpstack-v4"
	TTSV3        = "tts-v3"
)

// Model is the decoder model of every simulated device.
const Model = "cayenne-lpp"

var districts = []string{"centre", "north", "east", "south", "west"}

// Options shape a simulated stream.
type Options struct {
	Format  string    // ChirpStackV4 or TTSV3
	Devices int       // fleet size (default 10)
	Seed    uint64    // same seed, same stream
	Start   time.Time // time of the first uplink (default 2026-01-01T00:00:00Z)
	// Interval is the time between two uplinks of the stream (not of one
	// device); default 1s.
	Interval time.Duration
	// Object adds the network server's decoded object to ChirpStack v4
	// uplinks, as ChirpStack's Cayenne LPP codec writes it
	// ({"temperatureSensor": {"1": 21.3}, …}), for consumers that take
	// the network server's decoding (the benchmark's object fleet and
	// Telegraf). The stream's other bytes and values stay the same.
	Object bool
}

// Message is one publishable uplink.
type Message struct {
	Topic   string
	Payload []byte
	DevEUI  devices.EUI
	Time    time.Time
	FCnt    uint32
	// Values are what the payload encodes, for tests to compare with what
	// InfluxDB returns.
	Temperature, Humidity, Pressure float64
}

// Fleet generates a deterministic stream of uplinks.
type Fleet struct {
	opt   Options
	rng   *rand.Rand
	devs  []simDevice
	n     int
	sweep int // the next device of NextInOrder
	appID string
}

type simDevice struct {
	dev      devices.Device
	fcnt     uint32
	temp     float64
	humidity float64
	pressure float64
}

// NewFleet returns a fleet generator.
func NewFleet(opt Options) (*Fleet, error) {
	if opt.Format == "" {
		opt.Format = ChirpStackV4
	}
	if opt.Format != ChirpStackV4 && opt.Format != TTSV3 {
		return nil, fmt.Errorf("simulate: format %q: use %s or %s", opt.Format, ChirpStackV4, TTSV3)
	}
	if opt.Devices <= 0 {
		opt.Devices = 10
	}
	if opt.Devices > 1<<24 {
		return nil, fmt.Errorf("simulate: %d devices: at most %d", opt.Devices, 1<<24)
	}
	if opt.Start.IsZero() {
		opt.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if opt.Interval <= 0 {
		opt.Interval = time.Second
	}
	f := &Fleet{opt: opt, rng: rand.New(rand.NewPCG(opt.Seed, opt.Seed^0x9e3779b97f4a7c15))}
	f.appID = f.uuid()
	for i := 0; i < opt.Devices; i++ {
		var eui devices.EUI
		binary.BigEndian.PutUint64(eui[:], fleetEUI(opt.Seed, i))
		f.devs = append(f.devs, simDevice{
			dev: devices.Device{
				EUI: eui, Name: fmt.Sprintf("sim-%s-%04d", shortFormat(opt.Format), i), Model: Model,
				Tags: map[string]string{"district": districts[i%len(districts)], "site": fmt.Sprintf("site-%02d", i%7)},
			},
			fcnt:     uint32(f.rng.IntN(1000)),
			temp:     5 + 15*f.rng.Float64(),
			humidity: 40 + 40*f.rng.Float64(),
			pressure: 990 + 40*f.rng.Float64(),
		})
	}
	return f, nil
}

// fleetEUI is the i-th device's EUI. The first 65,536 keep the form they
// always had (tests and golden files know them); past that the seed has
// fewer bits and the index more, so a fleet of millions stays unique.
func fleetEUI(seed uint64, i int) uint64 {
	if i < 1<<16 {
		return 0x70b3d57ed0000000 | (seed&0xfff)<<16 | uint64(i)
	}
	return 0x70b3d57f00000000 | (seed&0xff)<<24 | uint64(i)&0xffffff
}

func shortFormat(format string) string {
	if format == TTSV3 {
		return "tts"
	}
	return "cs"
}

// Devices returns the simulated fleet, as a devices file would list it.
func (f *Fleet) Devices() []devices.Device {
	out := make([]devices.Device, len(f.devs))
	for i, d := range f.devs {
		out[i] = d.dev
	}
	return out
}

// Next returns the next uplink of the stream.
func (f *Fleet) Next() Message {
	return f.next(&f.devs[f.rng.IntN(len(f.devs))])
}

// NextInOrder is Next from the fleet's devices in turn rather than at
// random: len(Devices()) calls give every device one uplink, as a
// benchmark's warm-up wants (every device heard once before it measures).
func (f *Fleet) NextInOrder() Message {
	d := &f.devs[f.sweep%len(f.devs)]
	f.sweep++
	return f.next(d)
}

func (f *Fleet) next(d *simDevice) Message {
	i := f.n
	f.n++
	d.fcnt++
	// Bounded random walks, quantized as Cayenne LPP carries them.
	d.temp = clamp(d.temp+f.rng.NormFloat64()*0.3, -20, 40)
	d.humidity = clamp(d.humidity+f.rng.NormFloat64(), 5, 100)
	d.pressure = clamp(d.pressure+f.rng.NormFloat64()*0.5, 950, 1050)
	temp := math.Round(d.temp*10) / 10
	hum := math.Round(d.humidity*2) / 2
	pres := math.Round(d.pressure*10) / 10
	payload := []byte{
		1, 0x67, 0, 0, // temperature, 0.1 °C signed
		2, 0x68, byte(hum * 2), // humidity, 0.5 %
		3, 0x73, 0, 0, // barometer, 0.1 hPa
	}
	binary.BigEndian.PutUint16(payload[2:], uint16(int16(math.Round(temp*10))))
	binary.BigEndian.PutUint16(payload[9:], uint16(math.Round(pres*10)))
	t := f.opt.Start.Add(time.Duration(i) * f.opt.Interval).Add(time.Duration(f.rng.IntN(1000)) * time.Microsecond)
	m := Message{DevEUI: d.dev.EUI, Time: t, FCnt: d.fcnt, Temperature: temp, Humidity: hum, Pressure: pres}
	gws := f.gateways()
	sf := 7 + f.rng.IntN(6)
	freq := 867100000 + 200000*f.rng.IntN(8)
	switch f.opt.Format {
	case TTSV3:
		m.Topic, m.Payload = f.tts(d, payload, t, gws, sf, freq)
	default:
		m.Topic, m.Payload = f.chirpstack(d, payload, t, gws, sf, freq, temp, hum, pres)
	}
	return m
}

type gwRx struct {
	eui  string
	rssi int
	snr  float64
}

func (f *Fleet) gateways() []gwRx {
	n := 1 + f.rng.IntN(3)
	out := make([]gwRx, n)
	for i := range out {
		out[i] = gwRx{
			eui:  fmt.Sprintf("b827ebfffe%06x", 0x100+f.rng.IntN(8)),
			rssi: -120 + f.rng.IntN(80),
			snr:  math.Round((-10+f.rng.Float64()*20)*4) / 4,
		}
	}
	return out
}

func (f *Fleet) uuid() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], f.rng.Uint64())
	binary.BigEndian.PutUint64(b[8:], f.rng.Uint64())
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (f *Fleet) chirpstack(d *simDevice, payload []byte, t time.Time, gws []gwRx, sf, freq int, temp, hum, pres float64) (string, []byte) {
	type rx struct {
		GatewayID string            `json:"gatewayId"`
		UplinkID  uint32            `json:"uplinkId"`
		Time      string            `json:"time"`
		RSSI      int               `json:"rssi"`
		SNR       float64           `json:"snr"`
		Channel   int               `json:"channel"`
		RFChain   int               `json:"rfChain"`
		Location  struct{}          `json:"location"`
		Context   string            `json:"context"`
		Metadata  map[string]string `json:"metadata"`
		CRCStatus string            `json:"crcStatus"`
	}
	rxs := make([]rx, len(gws))
	for i, g := range gws {
		ctx := make([]byte, 4)
		binary.BigEndian.PutUint32(ctx, f.rng.Uint32())
		rxs[i] = rx{GatewayID: g.eui, UplinkID: f.rng.Uint32() & 0xffff, Time: t.Format(time.RFC3339Nano), RSSI: g.rssi, SNR: g.snr,
			Channel: (freq - 867100000) / 200000, RFChain: 1, Context: base64.StdEncoding.EncodeToString(ctx),
			Metadata: map[string]string{"region_common_name": "EU868", "region_config_id": "eu868"}, CRCStatus: "CRC_OK"}
	}
	msg := map[string]any{
		"deduplicationId": f.uuid(),
		"time":            t.Format("2006-01-02T15:04:05.000000000+00:00"),
		"deviceInfo": map[string]any{
			"tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242", "tenantName": "City",
			"applicationId": f.appID, "applicationName": "weather",
			"deviceProfileId": "605d08d4-65f5-4d2c-8a5a-3d2457662f79", "deviceProfileName": "Cayenne LPP weather",
			"deviceName": d.dev.Name, "devEui": d.dev.EUI.String(), "deviceClassEnabled": "CLASS_A",
			"tags": d.dev.Tags,
		},
		"devAddr":   fmt.Sprintf("%08x", binary.BigEndian.Uint32(d.dev.EUI[4:])),
		"adr":       true,
		"dr":        12 - sf,
		"fCnt":      d.fcnt,
		"fPort":     2,
		"confirmed": false,
		"data":      base64.StdEncoding.EncodeToString(payload),
		"rxInfo":    rxs,
		"txInfo": map[string]any{"frequency": freq, "modulation": map[string]any{"lora": map[string]any{
			"bandwidth": 125000, "spreadingFactor": sf, "codeRate": "CR_4_5"}}},
		"regionConfigId": "eu868",
	}
	if f.opt.Object {
		msg["object"] = map[string]any{
			"temperatureSensor": map[string]float64{"1": temp},
			"humiditySensor":    map[string]float64{"2": hum},
			"barometer":         map[string]float64{"3": pres},
		}
	}
	b, _ := json.Marshal(msg)
	return "application/" + f.appID + "/device/" + d.dev.EUI.String() + "/event/up", b
}

func (f *Fleet) tts(d *simDevice, payload []byte, t time.Time, gws []gwRx, sf, freq int) (string, []byte) {
	devID := "eui-" + d.dev.EUI.String()
	up := strings.ToUpper(d.dev.EUI.String())
	rxs := make([]map[string]any, len(gws))
	for i, g := range gws {
		rxs[i] = map[string]any{
			"gateway_ids": map[string]any{"gateway_id": "gw-" + g.eui, "eui": strings.ToUpper(g.eui)},
			"time":        t.Format(time.RFC3339Nano), "timestamp": f.rng.Uint32(),
			"rssi": g.rssi, "channel_rssi": g.rssi, "snr": g.snr,
			"frequency_offset": fmt.Sprint(f.rng.IntN(2000)), "channel_index": (freq - 867100000) / 200000,
			"received_at": t.Format(time.RFC3339Nano),
		}
	}
	msg := map[string]any{
		"end_device_ids": map[string]any{
			"device_id": devID, "application_ids": map[string]any{"application_id": "weather"},
			"dev_eui": up, "join_eui": "70B3D57ED0000000", "dev_addr": strings.ToUpper(fmt.Sprintf("%08x", binary.BigEndian.Uint32(d.dev.EUI[4:]))),
		},
		"correlation_ids": []string{"as:up:" + f.ulid(t), "rpc:/ttn.lorawan.v3.AppAs/Up:" + f.ulid(t)},
		"received_at":     t.Add(30 * time.Millisecond).Format(time.RFC3339Nano),
		"uplink_message": map[string]any{
			"session_key_id": base64.StdEncoding.EncodeToString(d.dev.EUI[:]),
			"f_port":         2, "f_cnt": d.fcnt,
			"frm_payload": base64.StdEncoding.EncodeToString(payload),
			"rx_metadata": rxs,
			"settings": map[string]any{
				"data_rate": map[string]any{"lora": map[string]any{"bandwidth": 125000, "spreading_factor": sf, "coding_rate": "4/5"}},
				"frequency": fmt.Sprint(freq), "time": t.Format(time.RFC3339Nano),
			},
			"received_at":      t.Format(time.RFC3339Nano),
			"consumed_airtime": "0.061696s",
			"version_ids":      map[string]any{"brand_id": "sensorgate", "model_id": "weather-lpp", "band_id": "EU_863_870"},
			"network_ids":      map[string]any{"net_id": "000013", "tenant_id": "ttn", "cluster_id": "eu1"},
		},
	}
	b, _ := json.Marshal(msg)
	return "v3/weather@ttn/devices/" + devID + "/up", b
}

// ulid makes a deterministic ULID-shaped id (Crockford base32, 26 chars).
func (f *Fleet) ulid(t time.Time) string {
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	var b [26]byte
	ms := uint64(t.UnixMilli())
	for i := 9; i >= 0; i-- {
		b[i] = alphabet[ms&31]
		ms >>= 5
	}
	for i := 10; i < 26; i++ {
		b[i] = alphabet[f.rng.IntN(32)]
	}
	return string(b[:])
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }
