package mqtt

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
)

// ChirpStack v4 publishes integration.UplinkEvent as protobuf JSON on
// application/{application_id}/device/{dev_eui}/event/up. Since late 2022 it
// emits top-level fields with default values; older versions omit them, so
// every number here may be absent and then means 0 (proto3 rules).
//
// csV4Up holds the fields an Uplink needs; readCSV4 fills it.
type csV4Up struct {
	DeduplicationID string
	Time            string
	DeviceInfo      struct {
		DeviceProfileName string
		DeviceName        string
		DevEUI            string
		Tags              map[string]string
	}
	DevAddr string
	DR      number
	FCnt    number
	FPort   number
	Data    string
	Object  map[string]any
	RxInfo  []csV4Rx
	TxInfo  struct {
		Frequency number
		LoRa      *loraModulation // modulation.lora
	}
	// JoinServerContext with an AppSKey means ChirpStack did not hold the
	// key, so data is still encrypted (with devAddr and fCnt).
	JoinServerContext *struct {
		AppSKey string // JSON text; "" when absent
	}
}

type csV4Rx struct {
	GatewayID string
	NsTime    string
	Time      string
	RSSI      number
	SNR       number
}

// readCSV4 reads an uplink event into m (see jsonScanner for the rules).
func (sc *jsonScanner) readCSV4(m *csV4Up) {
	d := &m.DeviceInfo
	sc.readMembers("",
		stringMember("deduplicationId", "deduplicationId", &m.DeduplicationID),
		stringMember("time", "time", &m.Time),
		readMember("deviceInfo", func() {
			sc.readMembers("deviceInfo",
				stringMember("deviceProfileName", "deviceInfo.deviceProfileName", &d.DeviceProfileName),
				stringMember("deviceName", "deviceInfo.deviceName", &d.DeviceName),
				stringMember("devEui", "deviceInfo.devEui", &d.DevEUI),
				stringMapMember("tags", "deviceInfo.tags", &d.Tags))
		}),
		stringMember("devAddr", "devAddr", &m.DevAddr),
		numberMember("dr", &m.DR),
		numberMember("fCnt", &m.FCnt),
		numberMember("fPort", &m.FPort),
		stringMember("data", "data", &m.Data),
		readMember("object", func() { sc.setAnyMap(&m.Object, "object") }),
		readMember("rxInfo", func() { readSlice(sc, &m.RxInfo, "rxInfo", sc.readCSV4Rx) }),
		readMember("txInfo", func() {
			sc.readMembers("txInfo",
				numberMember("frequency", &m.TxInfo.Frequency),
				readMember("modulation", func() {
					sc.readLoRaIn(&m.TxInfo.LoRa, "txInfo.modulation", "txInfo.modulation.lora", "bandwidth", "spreadingFactor")
				}))
		}),
		readMember("joinServerContext", func() {
			readPointer(sc, &m.JoinServerContext, "joinServerContext", func(j *struct{ AppSKey string }) {
				sc.readMembers("joinServerContext", readMember("appSKey", func() { j.AppSKey = sc.raw() }))
			})
		}))
}

func (sc *jsonScanner) readCSV4Rx(rx *csV4Rx) {
	sc.readMembers("rxInfo",
		stringMember("gatewayId", "rxInfo.gatewayId", &rx.GatewayID),
		stringMember("nsTime", "rxInfo.nsTime", &rx.NsTime),
		stringMember("time", "rxInfo.time", &rx.Time),
		numberMember("rssi", &rx.RSSI),
		numberMember("snr", &rx.SNR))
}

// readLoRaIn reads the LoRa modulation info in the "lora" member of the
// object at field (ChirpStack's txInfo.modulation, The Things Stack's
// settings.data_rate) into *l; lora is its path, and the feeds spell the
// bandwidth and spreading factor keys differently.
func (sc *jsonScanner) readLoRaIn(l **loraModulation, field, lora, bandwidth, spreadingFactor string) {
	for key, ok := sc.structOpen(field); ok; key, ok = sc.nextKey() {
		if fieldKey(key, "lora") == "" {
			sc.skip()
			continue
		}
		readPointer(sc, l, lora, func(m *loraModulation) {
			sc.readMembers(lora, numberMember(bandwidth, &m.Bandwidth), numberMember(spreadingFactor, &m.SpreadingFactor))
		})
	}
}

// loraModulation is ChirpStack's LoRa modulation info; bandwidth is in Hz
// in v4 and in kHz in v3.
type loraModulation struct {
	Bandwidth       number `json:"bandwidth"`
	SpreadingFactor number `json:"spreadingFactor"`
}

// parseChirpStackV4 reads a ChirpStack v4 "up" event. Time is the event's
// time, else the earliest rxInfo nsTime, else the earliest rxInfo time, else
// the local clock. ID is deduplicationId, else DevEUI:FCnt.
//
// Other events on .../event/<event> topics: status, join and log are read
// by parseCSV4DeviceEvent, the rest are ignored.
func parseChirpStackV4(p *Parser, topic string, payload []byte) (gateway.Uplink, error) {
	return parseCSV4Event(p, csV4Event(topic), payload)
}

// parseCSV4Event reads a ChirpStack v4 event of the named kind.
func parseCSV4Event(p *Parser, event string, payload []byte) (gateway.Uplink, error) {
	switch event {
	case "up":
		return parseCSV4Up(p, payload)
	case "status", "join", "log":
		return parseCSV4DeviceEvent(p, event, payload)
	}
	return ignored(), nil
}

func parseCSV4Up(p *Parser, payload []byte) (gateway.Uplink, error) {
	var m csV4Up
	sc := newScanner(payload)
	sc.readCSV4(&m)
	if err := sc.finish(); err != nil {
		return gateway.Uplink{}, fmt.Errorf("not a ChirpStack v4 uplink event (JSON encoding): %w", err)
	}
	up := gateway.Uplink{
		DeviceName: m.DeviceInfo.DeviceName,
		Profile:    m.DeviceInfo.DeviceProfileName,
		Tags:       nilIfEmpty(m.DeviceInfo.Tags),
		Object:     m.Object,
		ID:         m.DeduplicationID,
	}
	var err error
	if m.JoinServerContext != nil && m.JoinServerContext.AppSKey != "" && m.JoinServerContext.AppSKey != "null" {
		// ChirpStack did not hold the AppSKey (a join server does), so
		// data is the encrypted FRMPayload: the pipeline decrypts it when
		// the registry holds the key.
		up.Encrypted = true
		if up.DevAddr, err = parseDevAddr("devAddr", m.DevAddr); err != nil {
			return gateway.Uplink{}, err
		}
	}
	if up.DevEUI, err = parseDevEUI("deviceInfo.devEui", m.DeviceInfo.DevEUI); err != nil {
		return gateway.Uplink{}, err
	}
	if err := frameFields(&up, "fCnt", m.FCnt, "fPort", m.FPort); err != nil {
		return gateway.Uplink{}, err
	}
	if up.Payload, err = decodeBase64("data", m.Data); err != nil {
		return gateway.Uplink{}, err
	}
	if up.ID == "" {
		up.ID = counterID(up.DevEUI, "", up.FCnt)
	}

	// dr is a top-level proto3 field: absent means DR0.
	if up.Radio.DR, _, err = m.DR.asInt("dr", 0, 15); err != nil {
		return gateway.Uplink{}, err
	}
	if err := txRadio(&up.Radio, m.TxInfo.Frequency, m.TxInfo.LoRa, 1); err != nil {
		return gateway.Uplink{}, err
	}
	if len(m.RxInfo) > 0 {
		up.Radio.Gateways = make([]gateway.GatewayRx, 0, len(m.RxInfo))
	}
	for i, rx := range m.RxInfo {
		id, err := gatewayEUI("gatewayId", rx.GatewayID)
		if err != nil {
			return gateway.Uplink{}, fmt.Errorf("rxInfo[%d].%w", i, err)
		}
		g, err := gatewayRx(id, rx.RSSI, rx.SNR)
		if err != nil {
			return gateway.Uplink{}, fmt.Errorf("rxInfo[%d].%w", i, err)
		}
		up.Radio.Gateways = append(up.Radio.Gateways, g)
	}

	if m.Time != "" {
		if up.Time, err = parseEventTime("time", m.Time); err != nil {
			return gateway.Uplink{}, err
		}
		return up, nil
	}
	// Without an event time, the receptions' times are read, and their
	// lists built, only now: most events carry one.
	nsTimes := make([]string, 0, len(m.RxInfo))
	gwTimes := make([]string, 0, len(m.RxInfo))
	for _, rx := range m.RxInfo {
		nsTimes = append(nsTimes, rx.NsTime)
		gwTimes = append(gwTimes, rx.Time)
	}
	if up.Time, err = firstTime("rxInfo[].nsTime", nsTimes, "rxInfo[].time", gwTimes); err != nil {
		return gateway.Uplink{}, err
	}
	up.LocalTime = up.Time.IsZero()
	if up.LocalTime {
		up.Time = p.localTime()
	}
	return up, nil
}

// parseEventTime reads a ChirpStack v4 event time in whole microseconds.
// ChirpStack's PostgreSQL integration keeps the time as a timestamptz
// (microseconds), so an uplink backfilled from its event_up table
// (gateway/chirpstackpg) must meet the point written live at the same
// instant, or an overlap would write every uplink twice; the nanoseconds
// of a network server's receive clock carry nothing a reading needs. The
// range is checked after the cut, as InfluxDB will store it.
func parseEventTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: not an RFC 3339 time: %w", field, truncate(s, 40), err)
	}
	return checkTime(field, t.UTC().Truncate(time.Microsecond))
}

// firstTime returns the earliest time of the first list that has one, or
// the zero time.
func firstTime(field1 string, times1 []string, field2 string, times2 []string) (time.Time, error) {
	t, ok, err := earliest(field1, times1)
	if err != nil || ok {
		return t, err
	}
	t, _, err = earliest(field2, times2)
	return t, err
}

// txRadio fills frequency, spreading factor and bandwidth from txInfo;
// bwScale turns the feed's bandwidth unit into Hz.
func txRadio(r *gateway.Radio, freq number, lora *loraModulation, bwScale int) error {
	f, _, err := freq.asUint("txInfo.frequency", 1<<40)
	if err != nil {
		return err
	}
	r.Frequency = f
	if lora == nil {
		return nil
	}
	if r.SF, _, err = lora.SpreadingFactor.asInt("txInfo spreadingFactor", 0, 12); err != nil {
		return err
	}
	bw, _, err := lora.Bandwidth.asInt("txInfo bandwidth", 0, 1<<30)
	if err != nil {
		return err
	}
	r.Bandwidth = bw * bwScale
	return nil
}

// gatewayRx builds one gateway reception; HasSNR is set when the feed
// carried an SNR. Errors name the field relative to the reception, for the
// caller to prefix with its position.
func gatewayRx(id string, rssi, snr number) (gateway.GatewayRx, error) {
	g := gateway.GatewayRx{ID: id}
	var err error
	if g.RSSI, _, err = rssi.asFloat("rssi"); err != nil {
		return g, err
	}
	if g.SNR, g.HasSNR, err = snr.asFloat("snr"); err != nil {
		return g, err
	}
	return g, nil
}

// ChirpStack Application Server v3 publishes uplinks in two JSON encodings
// with the same field names: json_v3 (the default: hex EUIs, loRaSNR,
// txInfo.dr, decoded data as "object") and protobuf JSON "json" (base64
// EUIs, objectJSON as a string holding JSON, txInfo.loRaModulationInfo with
// bandwidth in kHz, top-level dr). One struct reads both; the EUI form tells
// them apart per message.
type csV3Up struct {
	DeviceName        string `json:"deviceName"`
	DeviceProfileName string `json:"deviceProfileName"`
	DevEUI            string `json:"devEUI"`
	RxInfo            []struct {
		GatewayID string `json:"gatewayID"`
		Name      string `json:"name"`
		Time      string `json:"time"`
		RSSI      number `json:"rssi"`
		LoRaSNR   number `json:"loRaSNR"`
	} `json:"rxInfo"`
	TxInfo struct {
		Frequency          number          `json:"frequency"`
		DR                 number          `json:"dr"`
		LoRaModulationInfo *loraModulation `json:"loRaModulationInfo"`
	} `json:"txInfo"`
	DR         number            `json:"dr"`
	FCnt       number            `json:"fCnt"`
	FPort      number            `json:"fPort"`
	Data       string            `json:"data"`
	Object     map[string]any    `json:"object"`
	ObjectJSON string            `json:"objectJSON"`
	Tags       map[string]string `json:"tags"`
}

// parseChirpStackV3 reads a ChirpStack v3 uplink in either JSON encoding.
// v3 has no deduplication id, so ID is DevEUI:FCnt (lower-case hex, decimal
// counter; FPort is left out because one frame counter value names one
// frame whatever its port). Time is the earliest rxInfo time, else the
// local clock. DR is the top-level dr (json), else txInfo.dr (json_v3),
// else -1; json_v3 carries no spreading factor or bandwidth.
func parseChirpStackV3(p *Parser, _ string, payload []byte) (gateway.Uplink, error) {
	var m csV3Up
	if err := json.Unmarshal(payload, &m); err != nil {
		return gateway.Uplink{}, fmt.Errorf("not a ChirpStack v3 uplink (json_v3 or json encoding): %w", jsonError(err))
	}
	up := gateway.Uplink{
		DeviceName: m.DeviceName,
		Profile:    m.DeviceProfileName,
		Tags:       nilIfEmpty(m.Tags),
		Object:     m.Object,
	}
	if m.DevEUI == "" {
		return gateway.Uplink{}, fmt.Errorf("devEUI missing: the message does not say which device sent it")
	}
	var err error
	if up.DevEUI, err = v3EUI("devEUI", m.DevEUI); err != nil {
		return gateway.Uplink{}, err
	}
	if err := frameFields(&up, "fCnt", m.FCnt, "fPort", m.FPort); err != nil {
		return gateway.Uplink{}, err
	}
	if up.Payload, err = decodeBase64("data", m.Data); err != nil {
		return gateway.Uplink{}, err
	}
	if up.Object == nil && m.ObjectJSON != "" && m.ObjectJSON != "null" {
		if err := json.Unmarshal([]byte(m.ObjectJSON), &up.Object); err != nil {
			return gateway.Uplink{}, fmt.Errorf("objectJSON %q: not a JSON object: %w", truncate(m.ObjectJSON, 40), jsonError(err))
		}
	}
	up.ID = counterID(up.DevEUI, "", up.FCnt)

	dr, ok, err := m.DR.asInt("dr", 0, 15)
	if err != nil {
		return gateway.Uplink{}, err
	}
	if !ok {
		if dr, ok, err = m.TxInfo.DR.asInt("txInfo.dr", 0, 15); err != nil {
			return gateway.Uplink{}, err
		}
	}
	up.Radio.DR = dr
	if !ok {
		up.Radio.DR = -1
	}
	if err := txRadio(&up.Radio, m.TxInfo.Frequency, m.TxInfo.LoRaModulationInfo, 1000); err != nil {
		return gateway.Uplink{}, err
	}

	times := make([]string, 0, len(m.RxInfo))
	for i, rx := range m.RxInfo {
		id := rx.Name
		if rx.GatewayID != "" {
			e, err := v3EUI("gatewayID", rx.GatewayID)
			if err != nil {
				return gateway.Uplink{}, fmt.Errorf("rxInfo[%d].%w", i, err)
			}
			id = e.String()
		}
		g, err := gatewayRx(id, rx.RSSI, rx.LoRaSNR)
		if err != nil {
			return gateway.Uplink{}, fmt.Errorf("rxInfo[%d].%w", i, err)
		}
		up.Radio.Gateways = append(up.Radio.Gateways, g)
		times = append(times, rx.Time)
	}
	t, ok, err := earliest("rxInfo[].time", times)
	if err != nil {
		return gateway.Uplink{}, err
	}
	up.Time, up.LocalTime = t, !ok
	if !ok {
		up.Time = p.localTime()
	}
	return up, nil
}

// v3EUI reads an EUI as hex (json_v3) or as base64 of its 8 bytes (json).
func v3EUI(field, s string) (devices.EUI, error) {
	var e devices.EUI
	// Try the encoding the length suggests first: ParseEUI's fallback for
	// separators is costly, and this runs for every gateway.
	if len(s) == base64.StdEncoding.EncodedLen(len(e)) {
		// Decode needs room for DecodedLen (9 bytes for 12 characters),
		// even though a valid EUI uses 8.
		var b [9]byte
		if n, err := base64.StdEncoding.Decode(b[:], []byte(s)); err == nil && n == len(e) {
			return devices.EUI(b[:8]), nil
		}
	}
	if e, err := devices.ParseEUI(s); err == nil {
		return e, nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != len(e) {
		return e, fmt.Errorf("%s %q: %w: want 16 hex digits (json_v3) or base64 of 8 bytes (json encoding)", field, truncate(s, 40), devices.ErrBadEUI)
	}
	copy(e[:], b)
	return e, nil
}
