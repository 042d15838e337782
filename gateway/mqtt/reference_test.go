package mqtt

// The ChirpStack v4 and The Things Stack parsers as they were before the
// JSON scanner (scan.go): encoding/json into tagged structs. They are the
// reference the differential fuzz test (differential_test.go) holds the
// scanner-based parsers to, result for result and error for error.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"

	"github.com/sensorgate/sensorgate/gateway"
)

type refCSV4Up struct {
	DeduplicationID string `json:"deduplicationId"`
	Time            string `json:"time"`
	DeviceInfo      struct {
		DeviceProfileName string            `json:"deviceProfileName"`
		DeviceName        string            `json:"deviceName"`
		DevEUI            string            `json:"devEui"`
		Tags              map[string]string `json:"tags"`
	} `json:"deviceInfo"`
	DevAddr string         `json:"devAddr"`
	DR      number         `json:"dr"`
	FCnt    number         `json:"fCnt"`
	FPort   number         `json:"fPort"`
	Data    string         `json:"data"`
	Object  map[string]any `json:"object"`
	RxInfo  []struct {
		GatewayID string `json:"gatewayId"`
		NsTime    string `json:"nsTime"`
		Time      string `json:"time"`
		RSSI      number `json:"rssi"`
		SNR       number `json:"snr"`
	} `json:"rxInfo"`
	TxInfo struct {
		Frequency  number `json:"frequency"`
		Modulation struct {
			LoRa *loraModulation `json:"lora"`
		} `json:"modulation"`
	} `json:"txInfo"`
	// JoinServerContext with an AppSKey means ChirpStack did not hold the
	// key, so data is still encrypted (with devAddr and fCnt).
	JoinServerContext *struct {
		AppSKey json.RawMessage `json:"appSKey"`
	} `json:"joinServerContext"`
}

// refParseChirpStackV4 reads a ChirpStack v4 "up" event. Time is the event's
// time, else the earliest rxInfo nsTime, else the earliest rxInfo time, else
// the local clock. ID is deduplicationId, else DevEUI:FCnt.
func refParseChirpStackV4(p *Parser, topic string, payload []byte) (gateway.Uplink, error) {
	if ev := csV4Event(topic); ev != "up" {
		return parseCSV4Event(p, ev, payload) // events other than up have one parser
	}
	var m refCSV4Up
	if err := json.Unmarshal(payload, &m); err != nil {
		return gateway.Uplink{}, fmt.Errorf("not a ChirpStack v4 uplink event (JSON encoding): %w", jsonError(err))
	}
	up := gateway.Uplink{
		DeviceName: m.DeviceInfo.DeviceName,
		Profile:    m.DeviceInfo.DeviceProfileName,
		Tags:       nilIfEmpty(m.DeviceInfo.Tags),
		Object:     m.Object,
		ID:         m.DeduplicationID,
	}
	var err error
	if m.JoinServerContext != nil && len(m.JoinServerContext.AppSKey) > 0 && string(m.JoinServerContext.AppSKey) != "null" {
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
	if err := txRadio(&up.Radio, m.TxInfo.Frequency, m.TxInfo.Modulation.LoRa, 1); err != nil {
		return gateway.Uplink{}, err
	}
	nsTimes := make([]string, 0, len(m.RxInfo))
	gwTimes := make([]string, 0, len(m.RxInfo))
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
		nsTimes = append(nsTimes, rx.NsTime)
		gwTimes = append(gwTimes, rx.Time)
	}

	if m.Time != "" {
		up.Time, err = parseEventTime("time", m.Time)
		return up, err
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

type refTTSMessage struct {
	EndDeviceIDs struct {
		DeviceID string `json:"device_id"`
		DevEUI   string `json:"dev_eui"`
		DevAddr  string `json:"dev_addr"`
	} `json:"end_device_ids"`
	CorrelationIDs   []string      `json:"correlation_ids"`
	ReceivedAt       string        `json:"received_at"`
	UplinkMessage    *refTTSUplink `json:"uplink_message"`
	UplinkNormalized *refTTSUplink `json:"uplink_normalized"`
}

// refTTSUplink is ApplicationUplink, and the subset of it that
// ApplicationUplinkNormalized shares (normalized_payload is then one
// object instead of an array).
type refTTSUplink struct {
	FPort             number          `json:"f_port"`
	FCnt              number          `json:"f_cnt"`
	FRMPayload        string          `json:"frm_payload"`
	DecodedPayload    map[string]any  `json:"decoded_payload"`
	NormalizedPayload json.RawMessage `json:"normalized_payload"`
	// AppSKey is set when the application uses skip_payload_crypto: then
	// frm_payload is still encrypted.
	AppSKey    json.RawMessage `json:"app_s_key"`
	RxMetadata []struct {
		GatewayIDs struct {
			GatewayID string `json:"gateway_id"`
			EUI       string `json:"eui"`
		} `json:"gateway_ids"`
		RSSI        number `json:"rssi"`
		ChannelRSSI number `json:"channel_rssi"`
		SNR         number `json:"snr"`
	} `json:"rx_metadata"`
	Settings struct {
		DataRate struct {
			LoRa *struct {
				Bandwidth       number `json:"bandwidth"`
				SpreadingFactor number `json:"spreading_factor"`
			} `json:"lora"`
		} `json:"data_rate"`
		// DataRateIndex is only in older TTS versions.
		DataRateIndex number `json:"data_rate_index"`
		Frequency     number `json:"frequency"`
	} `json:"settings"`
	ReceivedAt string `json:"received_at"`
	VersionIDs struct {
		BrandID string `json:"brand_id"`
		ModelID string `json:"model_id"`
	} `json:"version_ids"`
	Attributes map[string]string `json:"attributes"`
}

// refParseTTS reads a The Things Stack v3 up or up/normalized message.
//
// Time is uplink_message.received_at (the Network Server's receive time,
// closest to the radio reception), else the top-level received_at (the
// Application Server's time), else the local clock. ID is the "as:up:<ULID>"
// correlation id, else DevEUI:FCnt; an up/normalized message appends
// "/normalized/<hash of its measurement>", because TTS publishes one such
// message per measurement with the same correlation ids. A device without
// a DevEUI (ABP) is named by device_id only. TTS carries no data rate index
// (DR is -1) unless an older version sends settings.data_rate_index.
func refParseTTS(p *Parser, topic string, payload []byte) (gateway.Uplink, error) {
	var m refTTSMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		return gateway.Uplink{}, fmt.Errorf("not a The Things Stack v3 uplink: %w", jsonError(err))
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
	if len(u.AppSKey) > 0 && string(u.AppSKey) != "null" {
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
	prefix := "uplink_message."
	if normalized {
		prefix = "uplink_normalized."
	}
	if err := frameFields(&up, prefix+"f_cnt", u.FCnt, prefix+"f_port", u.FPort); err != nil {
		return gateway.Uplink{}, err
	}
	if up.Payload, err = decodeBase64(prefix+"frm_payload", u.FRMPayload); err != nil {
		return gateway.Uplink{}, err
	}
	if up.Normalized, err = refTTSNormalized(prefix+"normalized_payload", u.NormalizedPayload); err != nil {
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
		h.Write(u.NormalizedPayload)
		up.ID += "/normalized/" + strconv.FormatUint(h.Sum64(), 16)
	}

	if err := refTTSRadio(&up.Radio, prefix, u); err != nil {
		return gateway.Uplink{}, err
	}
	switch {
	case u.ReceivedAt != "":
		up.Time, err = parseTime(prefix+"received_at", u.ReceivedAt)
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

// refTTSRadio fills the radio metadata from settings and rx_metadata.
func refTTSRadio(r *gateway.Radio, prefix string, u *refTTSUplink) error {
	s := &u.Settings
	var err error
	if r.Frequency, _, err = s.Frequency.asUint(prefix+"settings.frequency", 1<<40); err != nil {
		return err
	}
	dr, ok, err := s.DataRateIndex.asInt(prefix+"settings.data_rate_index", 0, 15)
	if err != nil {
		return err
	}
	r.DR = dr
	if !ok {
		r.DR = -1
	}
	if lora := s.DataRate.LoRa; lora != nil {
		if r.SF, _, err = lora.SpreadingFactor.asInt(prefix+"settings.data_rate.lora.spreading_factor", 0, 12); err != nil {
			return err
		}
		if r.Bandwidth, _, err = lora.Bandwidth.asInt(prefix+"settings.data_rate.lora.bandwidth", 0, 1<<30); err != nil {
			return err
		}
	}
	for i, md := range u.RxMetadata {
		id, err := gatewayEUI("gateway_ids.eui", md.GatewayIDs.EUI)
		if err != nil {
			return fmt.Errorf("%srx_metadata[%d].%w", prefix, i, err)
		}
		if id == "" {
			id = md.GatewayIDs.GatewayID
		}
		rssi := md.RSSI
		if !rssi.set && rssi.bad == "" {
			rssi = md.ChannelRSSI // older TTS versions set channel_rssi only
		}
		g, err := gatewayRx(id, rssi, md.SNR)
		if err != nil {
			return fmt.Errorf("%srx_metadata[%d].%w", prefix, i, err)
		}
		r.Gateways = append(r.Gateways, g)
	}
	return nil
}

// refTTSNormalized reads normalized_payload: an array of measurement objects
// in an up message, one object in an up/normalized message.
func refTTSNormalized(field string, raw json.RawMessage) ([]map[string]any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '{' {
		var one map[string]any
		if err := json.Unmarshal(raw, &one); err != nil {
			return nil, fmt.Errorf("%s: %w", field, jsonError(err))
		}
		return []map[string]any{one}, nil
	}
	var all []map[string]any
	if err := json.Unmarshal(raw, &all); err != nil {
		return nil, fmt.Errorf("%s: want an array of measurement objects: %w", field, jsonError(err))
	}
	if len(all) == 0 {
		return nil, nil
	}
	return all, nil
}
