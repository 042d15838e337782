package mqtt

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/sensorgate/sensorgate/gateway"
)

// The Things Stack v3 publishes ApplicationUp messages on
// v3/{app}[@{tenant}]/devices/{device}/up (uplink_message) and, one per
// normalized measurement, on .../up/normalized (uplink_normalized). Zero
// values are omitted and uint64 values are strings ("868300000").
//
// ttsMessage holds the fields an Uplink needs; readTTS fills it.
type ttsMessage struct {
	EndDeviceIDs struct {
		DeviceID string
		DevEUI   string
		DevAddr  string
	}
	CorrelationIDs   []string
	ReceivedAt       string
	UplinkMessage    *ttsUplink
	UplinkNormalized *ttsUplink
}

// ttsUplink is ApplicationUplink, and the subset of it that
// ApplicationUplinkNormalized shares (normalized_payload is then one
// object instead of an array).
type ttsUplink struct {
	FPort             number
	FCnt              number
	FRMPayload        string
	DecodedPayload    map[string]any
	NormalizedPayload string // JSON text, read by ttsNormalized
	// AppSKey is set when the application uses skip_payload_crypto: then
	// frm_payload is still encrypted. JSON text; "" when absent.
	AppSKey    string
	RxMetadata []ttsRx
	Settings   struct {
		LoRa *loraModulation // data_rate.lora
		// DataRateIndex is only in older TTS versions.
		DataRateIndex number
		Frequency     number
	}
	ReceivedAt string
	VersionIDs struct {
		BrandID string
		ModelID string
	}
	Attributes map[string]string
}

type ttsRx struct {
	GatewayID   string // gateway_ids.gateway_id
	EUI         string // gateway_ids.eui
	RSSI        number
	ChannelRSSI number
	SNR         number
}

// readTTS reads an up or up/normalized message into m (see jsonScanner
// for the rules).
func (sc *jsonScanner) readTTS(m *ttsMessage) {
	ids := &m.EndDeviceIDs
	sc.readMembers("",
		readMember("end_device_ids", func() {
			sc.readMembers("end_device_ids",
				stringMember("device_id", "end_device_ids.device_id", &ids.DeviceID),
				stringMember("dev_eui", "end_device_ids.dev_eui", &ids.DevEUI),
				stringMember("dev_addr", "end_device_ids.dev_addr", &ids.DevAddr))
		}),
		readMember("correlation_ids", func() {
			readSlice(sc, &m.CorrelationIDs, "correlation_ids", func(id *string) { sc.setString(id, "correlation_ids") })
		}),
		stringMember("received_at", "received_at", &m.ReceivedAt),
		readMember("uplink_message", func() {
			readPointer(sc, &m.UplinkMessage, "uplink_message", func(u *ttsUplink) { sc.readTTSUplink(u, "uplink_message.") })
		}),
		readMember("uplink_normalized", func() {
			readPointer(sc, &m.UplinkNormalized, "uplink_normalized", func(u *ttsUplink) { sc.readTTSUplink(u, "uplink_normalized.") })
		}))
}

// readTTSUplink reads uplink_message or uplink_normalized; prefix is its
// path, for type errors.
func (sc *jsonScanner) readTTSUplink(u *ttsUplink, prefix string) {
	sc.prefix = prefix
	defer func() { sc.prefix = "" }()
	s := &u.Settings
	sc.readMembers("",
		numberMember("f_port", &u.FPort),
		numberMember("f_cnt", &u.FCnt),
		stringMember("frm_payload", "frm_payload", &u.FRMPayload),
		readMember("decoded_payload", func() { sc.setAnyMap(&u.DecodedPayload, "decoded_payload") }),
		readMember("normalized_payload", func() { u.NormalizedPayload = sc.raw() }),
		readMember("app_s_key", func() { u.AppSKey = sc.raw() }),
		readMember("rx_metadata", func() { readSlice(sc, &u.RxMetadata, "rx_metadata", sc.readTTSRx) }),
		readMember("settings", func() {
			sc.readMembers("settings",
				readMember("data_rate", func() {
					sc.readLoRaIn(&s.LoRa, "settings.data_rate", "settings.data_rate.lora", "bandwidth", "spreading_factor")
				}),
				numberMember("data_rate_index", &s.DataRateIndex),
				numberMember("frequency", &s.Frequency))
		}),
		stringMember("received_at", "received_at", &u.ReceivedAt),
		readMember("version_ids", func() {
			sc.readMembers("version_ids",
				stringMember("brand_id", "version_ids.brand_id", &u.VersionIDs.BrandID),
				stringMember("model_id", "version_ids.model_id", &u.VersionIDs.ModelID))
		}),
		stringMapMember("attributes", "attributes", &u.Attributes))
}

func (sc *jsonScanner) readTTSRx(rx *ttsRx) {
	sc.readMembers("rx_metadata",
		readMember("gateway_ids", func() {
			sc.readMembers("rx_metadata.gateway_ids",
				stringMember("gateway_id", "rx_metadata.gateway_ids.gateway_id", &rx.GatewayID),
				stringMember("eui", "rx_metadata.gateway_ids.eui", &rx.EUI))
		}),
		numberMember("rssi", &rx.RSSI),
		numberMember("channel_rssi", &rx.ChannelRSSI),
		numberMember("snr", &rx.SNR))
}

// parseTTS reads a The Things Stack v3 up or up/normalized message.
//
// Time is uplink_message.received_at (the Network Server's receive time,
// closest to the radio reception), else the top-level received_at (the
// Application Server's time), else the local clock. ID is the "as:up:<ULID>"
// correlation id, else DevEUI:FCnt; an up/normalized message appends
// "/normalized/<hash of its measurement>", because TTS publishes one such
// message per measurement with the same correlation ids. A device without
// a DevEUI (ABP) is named by device_id only. TTS carries no data rate index
// (DR is -1) unless an older version sends settings.data_rate_index.
func parseTTS(p *Parser, topic string, payload []byte) (gateway.Uplink, error) {
	var m ttsMessage
	sc := newScanner(payload)
	sc.readTTS(&m)
	if err := sc.finish(); err != nil {
		return gateway.Uplink{}, fmt.Errorf("not a The Things Stack v3 uplink: %w", err)
	}
	u, normalized := m.UplinkMessage, false
	if u == nil {
		u, normalized = m.UplinkNormalized, true
	}
	if u == nil {
		if up, ok, err := parseTTSOther(p, payload); ok {
			return up, err
		}
		return gateway.Uplink{}, fmt.Errorf("neither uplink_message, uplink_normalized nor join_accept in the message on %q: subscribe to v3/+/devices/+/up (and optionally up/normalized and join) only", truncate(topic, 80))
	}
	up := gateway.Uplink{
		DeviceName: m.EndDeviceIDs.DeviceID,
		Profile:    joinNonEmpty(u.VersionIDs.BrandID, u.VersionIDs.ModelID),
		Tags:       nilIfEmpty(u.Attributes),
	}
	var err error
	if u.AppSKey != "" && u.AppSKey != "null" {
		// skip_payload_crypto: frm_payload is still encrypted; the
		// pipeline decrypts it when the registry holds the AppSKey.
		up.Encrypted = true
		if up.DevAddr, err = parseDevAddr("end_device_ids.dev_addr", m.EndDeviceIDs.DevAddr); err != nil {
			return gateway.Uplink{}, err
		}
	}
	if m.EndDeviceIDs.DevEUI != "" || up.DeviceName == "" {
		if up.DevEUI, err = parseDevEUI("end_device_ids.dev_eui", m.EndDeviceIDs.DevEUI); err != nil {
			return gateway.Uplink{}, err
		}
	}
	f := &ttsUplinkFields
	if normalized {
		f = &ttsNormalizedFields
	}
	if err := frameFields(&up, f.fCnt, u.FCnt, f.fPort, u.FPort); err != nil {
		return gateway.Uplink{}, err
	}
	if up.Payload, err = decodeBase64(f.frmPayload, u.FRMPayload); err != nil {
		return gateway.Uplink{}, err
	}
	if up.Normalized, err = ttsNormalized(f.normalizedPayload, u.NormalizedPayload); err != nil {
		return gateway.Uplink{}, err
	}
	if !normalized {
		up.Object = u.DecodedPayload
	}
	up.ID = asUpID(m.CorrelationIDs)
	switch {
	case up.ID == "":
		up.ID = counterID(up.DevEUI, up.DeviceName, up.FCnt)
	case normalized:
		h := fnv.New64a()
		h.Write([]byte(u.NormalizedPayload))
		up.ID += "/normalized/" + strconv.FormatUint(h.Sum64(), 16)
	}

	if err := ttsRadio(&up.Radio, f, u); err != nil {
		return gateway.Uplink{}, err
	}
	switch {
	case u.ReceivedAt != "":
		up.Time, err = parseTime(f.receivedAt, u.ReceivedAt)
	case m.ReceivedAt != "":
		up.Time, err = parseTime("received_at", m.ReceivedAt)
	default:
		up.Time, up.LocalTime = p.localTime(), true
	}
	if err != nil {
		return gateway.Uplink{}, err
	}
	return up, nil
}

// ttsFields are the paths, in errors, of the fields of uplink_message or
// uplink_normalized, joined once rather than for every message.
type ttsFields struct {
	prefix                                                 string
	fCnt, fPort, frmPayload, normalizedPayload, receivedAt string
	frequency, dataRateIndex, spreadingFactor, bandwidth   string
}

var (
	ttsUplinkFields     = newTTSFields("uplink_message.")
	ttsNormalizedFields = newTTSFields("uplink_normalized.")
)

func newTTSFields(prefix string) ttsFields {
	return ttsFields{
		prefix: prefix,
		fCnt:   prefix + "f_cnt", fPort: prefix + "f_port", frmPayload: prefix + "frm_payload",
		normalizedPayload: prefix + "normalized_payload", receivedAt: prefix + "received_at",
		frequency: prefix + "settings.frequency", dataRateIndex: prefix + "settings.data_rate_index",
		spreadingFactor: prefix + "settings.data_rate.lora.spreading_factor", bandwidth: prefix + "settings.data_rate.lora.bandwidth",
	}
}

// ttsRadio fills the radio metadata from settings and rx_metadata.
func ttsRadio(r *gateway.Radio, f *ttsFields, u *ttsUplink) error {
	s := &u.Settings
	var err error
	if r.Frequency, _, err = s.Frequency.asUint(f.frequency, 1<<40); err != nil {
		return err
	}
	dr, ok, err := s.DataRateIndex.asInt(f.dataRateIndex, 0, 15)
	if err != nil {
		return err
	}
	r.DR = dr
	if !ok {
		r.DR = -1
	}
	if lora := s.LoRa; lora != nil {
		if r.SF, _, err = lora.SpreadingFactor.asInt(f.spreadingFactor, 0, 12); err != nil {
			return err
		}
		if r.Bandwidth, _, err = lora.Bandwidth.asInt(f.bandwidth, 0, 1<<30); err != nil {
			return err
		}
	}
	for i, md := range u.RxMetadata {
		id, err := gatewayEUI("gateway_ids.eui", md.EUI)
		if err != nil {
			return fmt.Errorf("%srx_metadata[%d].%w", f.prefix, i, err)
		}
		if id == "" {
			id = md.GatewayID
		}
		rssi := md.RSSI
		if !rssi.set && rssi.bad == "" {
			rssi = md.ChannelRSSI // older TTS versions set channel_rssi only
		}
		g, err := gatewayRx(id, rssi, md.SNR)
		if err != nil {
			return fmt.Errorf("%srx_metadata[%d].%w", f.prefix, i, err)
		}
		r.Gateways = append(r.Gateways, g)
	}
	return nil
}

// ttsNormalized reads normalized_payload (JSON text the scanner checked):
// an array of measurement objects in an up message, one object in an
// up/normalized message.
func ttsNormalized(field string, raw string) ([]map[string]any, error) {
	if raw == "" || raw == "null" {
		return nil, nil
	}
	sc := jsonScanner{s: raw}
	if raw[0] == '{' {
		one := make(map[string]any)
		sc.anyMembers(one, "")
		if err := sc.finish(); err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		return []map[string]any{one}, nil
	}
	var all []map[string]any
	readSlice(&sc, &all, "", func(m *map[string]any) { sc.setAnyMap(m, "") })
	if err := sc.finish(); err != nil {
		return nil, fmt.Errorf("%s: want an array of measurement objects: %w", field, err)
	}
	if len(all) == 0 {
		return nil, nil
	}
	return all, nil
}

// asUpID returns the Application Server's "as:up:<ULID>" correlation id,
// unique per uplink and the same on every redelivery.
func asUpID(ids []string) string {
	for _, id := range ids {
		if strings.HasPrefix(id, "as:up:") {
			return id
		}
	}
	return ""
}

// joinNonEmpty joins brand and model ids with "-", skipping empty ones.
func joinNonEmpty(brand, model string) string {
	switch {
	case brand == "":
		return model
	case model == "":
		return brand
	}
	return brand + "-" + model
}
