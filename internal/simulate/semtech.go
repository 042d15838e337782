package simulate

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"time"

	"github.com/brocaar/lorawan"

	"github.com/sensorgate/sensorgate/devices"
)

// SemtechUDP is the format name of raw frames sent as a Semtech UDP
// packet forwarder would (`sensorgate simulate --format semtech-udp`).
const SemtechUDP = "semtech-udp"

// Semtech UDP packet-forwarder protocol (PROTOCOL.TXT, version 2).
const (
	semtechVersion  = 2
	semtechPushData = 0x00
	semtechPushAck  = 0x01
	semtechPullData = 0x02
	semtechPullAck  = 0x04
)

// SemtechOptions shape a simulated fleet of ABP devices heard by gateways
// running the Semtech UDP packet forwarder.
type SemtechOptions struct {
	Devices  int // fleet size (default 10)
	Gateways int // gateways in range; each frame is heard by 1..Gateways (default 3)
	// MinGateways raises the least number of gateways that hear a frame
	// (at most Gateways; 0 or 1: any number). A seed's PHYPayloads stay
	// the same bytes; the radio values drawn for the added receptions
	// shift the later ones.
	MinGateways int
	Seed        uint64    // same seed, same frames, byte for byte
	Start       time.Time // time of the first uplink (default 2026-01-01T00:00:00Z)
	Interval    time.Duration
	// MACVersion is the devices' LoRaWAN version: "1.0" (default) or "1.1".
	MACVersion string
}

// SemtechFleet generates deterministic, encrypted LoRaWAN uplinks of ABP
// devices with known keys (Devices lists them with their sessions), each
// wrapped in the PUSH_DATA datagrams of the gateways that heard it.
type SemtechFleet struct {
	values *Fleet // the same weather random walk as the MQTT formats
	rng    *rand.Rand
	devs   []devices.Device
	index  map[devices.EUI]int
	gws    [][8]byte
	minGws int
	token  uint16
}

// SemtechRx is one gateway's reception of a simulated frame.
type SemtechRx struct {
	GatewayEUI devices.EUI
	RSSI       int
	SNR        float64
}

// SemtechMessage is one simulated uplink: the frame, its receptions and
// the datagrams carrying it, with the values a test expects back.
type SemtechMessage struct {
	DevEUI     devices.EUI
	DevAddr    devices.DevAddr
	FCnt       uint32
	FPort      uint8
	Time       time.Time // the gateways' (GPS) receive time, in every rxpk
	Frequency  uint64    // Hz
	SF         int
	PHYPayload []byte
	Rx         []SemtechRx
	// Datagrams are the PUSH_DATA packets, one per receiving gateway.
	Datagrams [][]byte
	// Values are what the (Cayenne LPP) payload encodes.
	Temperature, Humidity, Pressure float64
}

// NewSemtechFleet returns a fleet generator.
func NewSemtechFleet(opt SemtechOptions) (*SemtechFleet, error) {
	if opt.MACVersion == "" {
		opt.MACVersion = devices.MACVersion10
	}
	if opt.MACVersion != devices.MACVersion10 && opt.MACVersion != devices.MACVersion11 {
		return nil, fmt.Errorf("simulate: mac version %q: use 1.0 or 1.1", opt.MACVersion)
	}
	if opt.Gateways <= 0 {
		opt.Gateways = 3
	}
	values, err := NewFleet(Options{Format: ChirpStackV4, Devices: opt.Devices, Seed: opt.Seed, Start: opt.Start, Interval: opt.Interval})
	if err != nil {
		return nil, err
	}
	f := &SemtechFleet{values: values, rng: rand.New(rand.NewPCG(opt.Seed^0x5e3c7ec4, opt.Seed)), index: map[devices.EUI]int{}, minGws: min(opt.MinGateways, opt.Gateways)}
	for i, d := range values.Devices() {
		d.Name = fmt.Sprintf("sim-udp-%04d", i)
		s := &devices.Session{MACVersion: opt.MACVersion}
		copy(s.DevAddr[:], d.EUI[4:])
		s.DevAddr[0] = 0x26 // a NetID type-0 style prefix, as TTN's 26xxxxxx
		f.key(&s.AppSKey)
		if opt.MACVersion == devices.MACVersion11 {
			f.key(&s.FNwkSIntKey)
			f.key(&s.SNwkSIntKey)
			f.key(&s.NwkSEncKey)
		} else {
			f.key(&s.NwkSKey)
		}
		d.Session = s
		f.index[d.EUI] = i
		f.devs = append(f.devs, d)
	}
	for i := 0; i < opt.Gateways; i++ {
		var g [8]byte
		binary.BigEndian.PutUint64(g[:], 0xb827ebfffe000000|uint64(opt.Seed&0xffff)<<8|uint64(i))
		f.gws = append(f.gws, g)
	}
	return f, nil
}

func (f *SemtechFleet) key(k *devices.Key) {
	binary.BigEndian.PutUint64(k[:8], f.rng.Uint64())
	binary.BigEndian.PutUint64(k[8:], f.rng.Uint64())
}

// Devices returns the fleet with its ABP sessions, as a devices file
// would list it.
func (f *SemtechFleet) Devices() []devices.Device {
	out := make([]devices.Device, len(f.devs))
	for i, d := range f.devs {
		s := *d.Session
		d.Session = &s
		out[i] = d
	}
	return out
}

// WriteDevicesCSV writes the fleet as a devices CSV file with its session
// keys in full: yaml.Marshal of Devices masks keys (devices.Key never
// prints them), so `simulate -write-devices` needs this form for a file
// sensorgate can import. The keys are simulated, not secrets.
func (f *SemtechFleet) WriteDevicesCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"dev_eui", "name", "model", "tag:district", "tag:site", "dev_addr", "mac_version",
		"nwk_s_key", "s_nwk_s_int_key", "f_nwk_s_int_key", "nwk_s_enc_key", "app_s_key"})
	full := func(k devices.Key) string {
		if k.IsZero() {
			return ""
		}
		return hex.EncodeToString(k[:])
	}
	for _, d := range f.devs {
		s := d.Session
		_ = cw.Write([]string{d.EUI.String(), d.Name, d.Model, d.Tags["district"], d.Tags["site"], s.DevAddr.String(), s.MACVersion,
			full(s.NwkSKey), full(s.SNwkSIntKey), full(s.FNwkSIntKey), full(s.NwkSEncKey), full(s.AppSKey)})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("simulate: write devices CSV: %w", err)
	}
	return nil
}

// Next returns the next uplink of the stream.
func (f *SemtechFleet) Next() SemtechMessage {
	v := f.values.Next()
	d := f.devs[f.index[v.DevEUI]]
	payload := cayenneWeather(v.Temperature, v.Humidity, v.Pressure)
	sf := 7 + f.rng.IntN(6)
	freq := uint64(867100000 + 200000*f.rng.IntN(8))
	m := SemtechMessage{
		DevEUI: d.EUI, DevAddr: d.Session.DevAddr, FCnt: v.FCnt, FPort: 2, Time: v.Time.UTC(), Frequency: freq, SF: sf,
		Temperature: v.Temperature, Humidity: v.Humidity, Pressure: v.Pressure,
	}
	var err error
	m.PHYPayload, err = EncodeUplink(d.Session, m.FCnt, m.FPort, payload)
	if err != nil {
		panic(err) // only for keys of the wrong size, which a Key cannot be
	}
	n := max(1+f.rng.IntN(len(f.gws)), f.minGws)
	first := f.rng.IntN(len(f.gws))
	for i := 0; i < n; i++ {
		g := f.gws[(first+i)%len(f.gws)]
		rx := SemtechRx{GatewayEUI: devices.EUI(g), RSSI: -120 + f.rng.IntN(80), SNR: math.Round((-10+f.rng.Float64()*20)*4) / 4}
		m.Rx = append(m.Rx, rx)
		m.Datagrams = append(m.Datagrams, f.pushData(g, m, rx))
	}
	return m
}

// cayenneWeather encodes the values as the MQTT formats' payload does.
func cayenneWeather(temp, hum, pres float64) []byte {
	b := []byte{1, 0x67, 0, 0, 2, 0x68, byte(hum * 2), 3, 0x73, 0, 0}
	binary.BigEndian.PutUint16(b[2:], uint16(int16(math.Round(temp*10))))
	binary.BigEndian.PutUint16(b[9:], uint16(math.Round(pres*10)))
	return b
}

// EncodeUplink builds an unconfirmed data uplink PHYPayload of the
// session: FRMPayload encrypted (AppSKey, or the network key for FPort 0)
// and the MIC set with the full 32-bit fCnt. For LoRaWAN 1.1 the MIC's
// SNwkSIntKey half is computed with TxDR 0 and TxCh 0.
func EncodeUplink(s *devices.Session, fCnt uint32, fPort uint8, payload []byte) ([]byte, error) {
	port := fPort
	mac := &lorawan.MACPayload{
		FHDR:  lorawan.FHDR{DevAddr: lorawan.DevAddr(s.DevAddr), FCnt: fCnt, FCtrl: lorawan.FCtrl{ADR: true}},
		FPort: &port,
	}
	if len(payload) > 0 {
		mac.FRMPayload = []lorawan.Payload{&lorawan.DataPayload{Bytes: append([]byte(nil), payload...)}}
	}
	phy := lorawan.PHYPayload{MHDR: lorawan.MHDR{MType: lorawan.UnconfirmedDataUp, Major: lorawan.LoRaWANR1}, MACPayload: mac}
	key := s.AppSKey
	if fPort == 0 {
		key = s.NwkEncKey()
	}
	if err := phy.EncryptFRMPayload(lorawan.AES128Key(key)); err != nil {
		return nil, fmt.Errorf("simulate: encrypt: %w", err)
	}
	version := lorawan.LoRaWAN1_0
	fk, sk := lorawan.AES128Key(s.NwkSKey), lorawan.AES128Key(s.NwkSKey)
	if s.Is11() {
		version, fk, sk = lorawan.LoRaWAN1_1, lorawan.AES128Key(s.FNwkSIntKey), lorawan.AES128Key(s.SNwkSIntKey)
	}
	if err := phy.SetUplinkDataMIC(version, 0, 0, 0, fk, sk); err != nil {
		return nil, fmt.Errorf("simulate: MIC: %w", err)
	}
	return phy.MarshalBinary()
}

// semtechRxpk is one received packet of a PUSH_DATA JSON object.
type semtechRxpk struct {
	Time string  `json:"time"`
	Tmst uint32  `json:"tmst"`
	Chan int     `json:"chan"`
	Rfch int     `json:"rfch"`
	Freq float64 `json:"freq"`
	Stat int     `json:"stat"`
	Modu string  `json:"modu"`
	Datr string  `json:"datr"`
	Codr string  `json:"codr"`
	RSSI int     `json:"rssi"`
	LSNR float64 `json:"lsnr"`
	Size int     `json:"size"`
	Data string  `json:"data"`
}

func (f *SemtechFleet) pushData(gw [8]byte, m SemtechMessage, rx SemtechRx) []byte {
	body, _ := json.Marshal(struct {
		Rxpk []semtechRxpk `json:"rxpk"`
	}{[]semtechRxpk{{
		Time: m.Time.Format("2006-01-02T15:04:05.000000Z"), Tmst: f.rng.Uint32(),
		Chan: int(m.Frequency-867100000) / 200000, Rfch: 1, Freq: float64(m.Frequency) / 1e6, Stat: 1,
		Modu: "LORA", Datr: fmt.Sprintf("SF%dBW125", m.SF), Codr: "4/5", RSSI: rx.RSSI, LSNR: rx.SNR,
		Size: len(m.PHYPayload), Data: base64.StdEncoding.EncodeToString(m.PHYPayload),
	}}})
	f.token++
	return append(semtechHeader(semtechPushData, f.token, gw), body...)
}

func semtechHeader(kind byte, token uint16, gw [8]byte) []byte {
	b := make([]byte, 12, 512)
	b[0] = semtechVersion
	binary.BigEndian.PutUint16(b[1:3], token)
	b[3] = kind
	copy(b[4:12], gw[:])
	return b
}

// SemtechSendOptions say where and how fast to send.
type SemtechSendOptions struct {
	Addr  string  // the sensorgate semtech-udp listen address, e.g. 127.0.0.1:1700
	Rate  float64 // uplinks per second; 0 = each as soon as the previous one was acknowledged
	Count int     // how many uplinks
	// AckTimeout is how long to wait for each PUSH_ACK before sending the
	// datagram again (default 1s; three tries).
	AckTimeout time.Duration
	// OnSent is called after every gateway's datagram of an uplink was
	// acknowledged.
	OnSent func(SemtechMessage)
}

// SendSemtech sends Count uplinks of the fleet as the fleet's gateways'
// packet forwarders would: a PULL_DATA per gateway first (answered by
// PULL_ACK), then a PUSH_DATA per reception of each uplink, each waiting
// for its PUSH_ACK. It returns when all were acknowledged or ctx ends;
// `sensorgate simulate --format semtech-udp` calls it.
func SendSemtech(ctx context.Context, f *SemtechFleet, opt SemtechSendOptions) error {
	if opt.AckTimeout <= 0 {
		opt.AckTimeout = time.Second
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", opt.Addr)
	if err != nil {
		return fmt.Errorf("simulate: dial %s: %w", opt.Addr, err)
	}
	conn := c.(*net.UDPConn)
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	buf := make([]byte, 64)
	exchange := func(pkt []byte, want byte) error {
		token := binary.BigEndian.Uint16(pkt[1:3])
		for try := 0; try < 3; try++ {
			if _, err := conn.Write(pkt); err != nil {
				return err
			}
			_ = conn.SetReadDeadline(time.Now().Add(opt.AckTimeout))
			for {
				n, err := conn.Read(buf)
				if ctx.Err() != nil {
					return ctx.Err()
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				if err != nil {
					return err
				}
				if n >= 4 && buf[0] == pkt[0] && binary.BigEndian.Uint16(buf[1:3]) == token && buf[3] == want {
					return nil
				}
				// An ACK of an earlier try: keep reading.
			}
		}
		return fmt.Errorf("no ack (type %#x) for token %d after 3 tries of %s", want, token, opt.AckTimeout)
	}
	for _, g := range f.gws {
		f.token++
		if err := exchange(semtechHeader(semtechPullData, f.token, g), semtechPullAck); err != nil {
			return fmt.Errorf("simulate: PULL_DATA to %s: %w (is sensorgate listening there with a semtech-udp source?)", opt.Addr, err)
		}
	}
	var tick *time.Ticker
	if opt.Rate > 0 {
		tick = time.NewTicker(time.Duration(float64(time.Second) / opt.Rate))
		defer tick.Stop()
	}
	for i := 0; i < opt.Count; i++ {
		if tick != nil {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		m := f.Next()
		for _, dg := range m.Datagrams {
			if err := exchange(dg, semtechPushAck); err != nil {
				return fmt.Errorf("simulate: PUSH_DATA %d to %s: %w", i, opt.Addr, err)
			}
		}
		if opt.OnSent != nil {
			opt.OnSent(m)
		}
	}
	return nil
}
