package lorawan

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
)

// Semtech UDP packet-forwarder protocol (Lora-net/packet_forwarder
// PROTOCOL.TXT): a 4-byte header (version, 2-byte token, identifier), the
// gateway EUI on gateway-to-server packets, then JSON.
const (
	idPushData = 0x00 // gateway → server: rxpk and stat JSON
	idPushAck  = 0x01
	idPullData = 0x02 // gateway → server: keep-alive opening the downlink route
	idPullResp = 0x03
	idPullAck  = 0x04
	idTxAck    = 0x05 // gateway → server: downlink result (we send none)
)

// errNotSemtech is wrapped by parsePacket for datagrams that are not the
// protocol: they get no ACK.
var errNotSemtech = errors.New("lorawan: not a Semtech UDP packet-forwarder datagram")

// packet is one gateway-to-server datagram.
type packet struct {
	version byte
	token   uint16
	id      byte
	gateway [8]byte // PUSH_DATA, PULL_DATA, TX_ACK
	body    []byte  // PUSH_DATA JSON (aliases the datagram)
}

// parsePacket reads a datagram's header. Protocol versions 1 and 2 share
// the layout; both are answered in the version they came in.
func parsePacket(b []byte) (packet, error) {
	var p packet
	if len(b) < 4 {
		return p, fmt.Errorf("%w: %d bytes", errNotSemtech, len(b))
	}
	p.version, p.token, p.id = b[0], binary.BigEndian.Uint16(b[1:3]), b[3]
	if p.version != 1 && p.version != 2 {
		return p, fmt.Errorf("%w: protocol version %d (want 1 or 2)", errNotSemtech, p.version)
	}
	switch p.id {
	case idPushData, idPullData, idTxAck:
		if len(b) < 12 {
			return p, fmt.Errorf("%w: identifier %#x with %d bytes, no gateway EUI", errNotSemtech, p.id, len(b))
		}
		copy(p.gateway[:], b[4:12])
		p.body = b[12:]
	default:
		return p, fmt.Errorf("%w: identifier %#x is not gateway-to-server", errNotSemtech, p.id)
	}
	return p, nil
}

// ack is the answer to a PUSH_DATA (PUSH_ACK) or PULL_DATA (PULL_ACK); nil
// for packets that get none.
func (p packet) ack() []byte {
	var id byte
	switch p.id {
	case idPushData:
		id = idPushAck
	case idPullData:
		id = idPullAck
	default:
		return nil
	}
	return []byte{p.version, byte(p.token >> 8), byte(p.token), id}
}

// rxpk is one received packet of a PUSH_DATA.
type rxpk struct {
	Time string          `json:"time"` // UTC, ISO 8601 "compact", when the gateway has GPS time
	Freq float64         `json:"freq"` // MHz
	Stat int             `json:"stat"` // CRC: 1 ok, -1 bad, 0 none
	Modu string          `json:"modu"` // LORA, FSK
	Datr json.RawMessage `json:"datr"` // "SF7BW125" for LoRa, bits/s for FSK
	RSSI *float64        `json:"rssi"`
	LSNR *float64        `json:"lsnr"`
	Size int             `json:"size"`
	Data string          `json:"data"` // base64 PHYPayload
	// Rsig is per-antenna signal of SX1301v2/SX1302 gateways, which may
	// leave rssi/lsnr out.
	Rsig []struct {
		RSSIC *float64 `json:"rssic"`
		LSNR  *float64 `json:"lsnr"`
	} `json:"rsig"`
}

// badRxpk is a received packet that cannot become a frame.
type badRxpk struct {
	raw []byte
	err error
}

// parsePushData turns a PUSH_DATA body into frames, one per rxpk with a
// good CRC. crcErrors counts packets the radio already knew were corrupt;
// bad lists the ones that are not valid rxpk.
func parsePushData(gw [8]byte, body []byte) (frames []Frame, crcErrors int, bad []badRxpk, err error) {
	var msg struct {
		Rxpk []json.RawMessage `json:"rxpk"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		return nil, 0, nil, fmt.Errorf("PUSH_DATA JSON from gateway %s: %w", hex.EncodeToString(gw[:]), err)
	}
	gwID := hex.EncodeToString(gw[:])
	for _, raw := range msg.Rxpk {
		var r rxpk
		if err := json.Unmarshal(raw, &r); err != nil {
			bad = append(bad, badRxpk{raw, fmt.Errorf("rxpk from gateway %s: %w", gwID, err)})
			continue
		}
		if r.Stat == -1 {
			crcErrors++
			continue
		}
		fr, err := r.frame(gwID)
		if err != nil {
			bad = append(bad, badRxpk{raw, fmt.Errorf("rxpk from gateway %s: %w", gwID, err)})
			continue
		}
		fr.Raw = raw
		frames = append(frames, fr)
	}
	return frames, crcErrors, bad, nil
}

func (r *rxpk) frame(gwID string) (Frame, error) {
	phy, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		return Frame{}, fmt.Errorf("data is not base64: %w", err)
	}
	if len(phy) == 0 {
		return Frame{}, errors.New("data is empty")
	}
	fr := Frame{PHYPayload: phy, DR: -1, Gateway: gateway.GatewayRx{ID: gwID}}
	if r.Freq > 0 && r.Freq < 10000 {
		fr.Frequency = uint64(math.Round(r.Freq * 1e6))
	}
	if r.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, r.Time)
		if err != nil {
			return Frame{}, fmt.Errorf("time %q: %w", r.Time, err)
		}
		fr.Time = t.UTC()
	}
	fr.SF, fr.Bandwidth = loraDatr(r.Datr)
	rssi, snr := r.RSSI, r.LSNR
	if len(r.Rsig) > 0 {
		if rssi == nil {
			rssi = r.Rsig[0].RSSIC
		}
		if snr == nil {
			snr = r.Rsig[0].LSNR
		}
	}
	if rssi != nil {
		fr.Gateway.RSSI = *rssi
	}
	if snr != nil {
		fr.Gateway.SNR, fr.Gateway.HasSNR = *snr, true
	}
	return fr, nil
}

// loraDatr reads "SF7BW125" into spreading factor and bandwidth in Hz;
// FSK (a number) and anything unreadable give zeros.
func loraDatr(raw json.RawMessage) (sf, bw int) {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return 0, 0
	}
	rest, ok := strings.CutPrefix(s, "SF")
	if !ok {
		return 0, 0
	}
	sfs, bws, ok := strings.Cut(rest, "BW")
	if !ok {
		return 0, 0
	}
	a, err1 := strconv.Atoi(sfs)
	b, err2 := strconv.Atoi(bws)
	if err1 != nil || err2 != nil || a < 5 || a > 12 || b <= 0 || b > 1600 {
		return 0, 0
	}
	return a, b * 1000
}
