package config

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sensorgate/sensorgate/gateway/lorawan"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
	"github.com/sensorgate/sensorgate/gateway/ttsstorage"
	"github.com/sensorgate/sensorgate/gateway/webhook"
)

// maxDedupWindow bounds dedup_window as lorawan.FrameConfig.Validate does:
// every uplink of raw frames waits this long before it is handled.
const maxDedupWindow = 10 * time.Second

// setDefaults fills what the file leaves out of source s at path sp.
func (s *Source) setDefaults(t *tree, sp string) {
	if m := s.MQTT; m != nil {
		if m.ClientID == "" && m.Name != "" {
			// Derived from the name, not random: the broker keeps the
			// persistent session (and the messages queued while we were
			// down) under the client id.
			m.ClientID = mqtt.ClientIDPrefix + m.Name
		}
		if m.QoS == nil {
			q := mqtt.DefaultQoS
			m.QoS = &q
		}
		if m.UnknownDevices == "" {
			m.UnknownDevices = defaultUnknownDevices(m.Format)
		}
		if m.Format == mqtt.FormatJSON && m.JSON.Time != "" {
			setString(&m.JSON.TimeFormat, mqtt.TimeRFC3339)
		}
		if st := s.Storage; st != nil {
			setInt(&st.PageSize, ttsstorage.DefaultPageSize, t, sp+".storage.page_size")
			setDuration(&st.RequestInterval, ttsstorage.DefaultRequestInterval, t, sp+".storage.request_interval")
			setDuration(&st.Timeout, ttsstorage.DefaultTimeout, t, sp+".storage.timeout")
			setDuration(&st.Delay, ttsstorage.DefaultDelay, t, sp+".storage.delay")
		}
		setInt(&m.MaxInFlight, mqtt.DefaultMaxInFlight, t, sp+".max_in_flight")
		setDuration(&m.ReconnectMax, mqtt.DefaultReconnectMax, t, sp+".reconnect_max")
		if isGatewayBridge(m) {
			if s.Frames == nil { // a Config built in code
				s.Frames = &lorawan.FrameConfig{}
			}
			s.Frames.UnknownDevices = m.UnknownDevices // one key, both structs
			setFrameDefaults(s.Frames, t, sp)
		}
	}
	if h := s.HTTP; h != nil {
		setString(&h.Path, webhook.DefaultPath)
		if h.UnknownDevices == "" {
			h.UnknownDevices = h.WithDefaults().UnknownDevices
		}
		setInt(&h.MaxBodyBytes, webhook.DefaultMaxBodyBytes, t, sp+".max_body_bytes")
		setInt(&h.MaxInFlight, webhook.DefaultMaxInFlight, t, sp+".max_in_flight")
		setDuration(&h.DrainTimeout, webhook.DefaultDrainTimeout, t, sp+".drain_timeout")
		setDuration(&h.RetryAfter, webhook.DefaultRetryAfter, t, sp+".retry_after")
	}
	if u := s.UDP; u != nil {
		setInt(&u.MaxInFlight, lorawan.DefaultMaxInFlight, t, sp+".max_in_flight")
		setDuration(&u.DrainTimeout, lorawan.DefaultDrainTimeout, t, sp+".drain_timeout")
		setFrameDefaults(&u.FrameConfig, t, sp)
	}
}

func setFrameDefaults(f *lorawan.FrameConfig, t *tree, sp string) {
	setDuration(&f.DedupWindow, lorawan.DefaultDedupWindow, t, sp+".dedup_window")
	setString(&f.FCntReset, lorawan.FCntResetReject)
	if f.FCntResetMax == 0 && !t.present(sp+".fcnt_reset_max") {
		f.FCntResetMax = lorawan.DefaultFCntResetMax
	}
	setDuration(&f.FCntResetGap, lorawan.DefaultFCntResetGap, t, sp+".fcnt_reset_gap")
	setString(&f.UnknownDevices, lorawan.UnknownDrop)
	setInt(&f.DedupMaxFrames, lorawan.DefaultDedupMaxFrames, t, sp+".dedup_max_frames")
}

// checkSources checks every source by its type; names are unique across
// all types, since a name is the source tag of every point.
func (c *Config) checkSources(p *collector) {
	if len(c.Sources) == 0 {
		p.add("sources", "no source: add at least one (see the sources in example.yaml)")
		return
	}
	seen := sourceSeen{names: map[string]int{}, clientIDs: map[string]int{}, listens: map[string]int{}}
	for i := range c.Sources {
		s := &c.Sources[i]
		sp := sourcePath(i)
		switch {
		case s.Type == "":
			p.add(sp+".type", "missing: use %s%s", orList(sourceTypes), typeHint(p.tree, sp))
			continue
		case !slices.Contains(sourceTypes, s.Type):
			oneOf(p, sp+".type", s.Type, sourceTypes, "source type")
			continue
		case s.MQTT == nil && s.UDP == nil && s.HTTP == nil:
			p.add(sp, "type %s without its settings: fill Source.MQTT, Source.UDP or Source.HTTP", s.Type)
			continue
		}
		nameDup := seen.name(p, sp, i, s.Name())
		if s.MQTT != nil {
			checkMQTTSource(p, sp, i, s, nameDup, &seen)
		}
		if s.UDP != nil {
			checkUDPSource(p, sp, i, s.UDP, &seen)
		}
		if s.HTTP != nil {
			checkHTTPSource(p, sp, i, s.HTTP, c.HTTP.Listen, &seen)
		}
	}
}

// sourceSeen remembers what must be unique across sources.
type sourceSeen struct {
	names, clientIDs, listens map[string]int
}

// name checks source i's name and reports whether it repeats an earlier one.
func (seen *sourceSeen) name(p *collector, sp string, i int, name string) (dup bool) {
	switch {
	case name == "":
		p.add(sp+".name", "missing: give each source a unique name; it is written as the source tag")
	case !isSlug(name):
		p.add(sp+".name", "%q: use letters, digits, '-', '_' and '.' only (it is a tag value and part of the client id)", name)
	default:
		if j, ok := seen.names[name]; ok {
			p.add(sp+".name", "%q is also the name of sources[%d]: give each source its own name", name, j)
			return true
		}
		seen.names[name] = i
	}
	return false
}

// typeHint guesses a missing type from the keys the entry has.
func typeHint(t *tree, sp string) string {
	switch {
	case t.present(sp+".listen") && (t.present(sp+".auth") || t.present(sp+".path") || t.present(sp+".format")):
		return " (listen with auth, path or format suggests http)"
	case t.present(sp + ".listen"):
		return " (listen suggests semtech-udp)"
	case t.present(sp + ".broker"):
		return " (broker suggests mqtt)"
	}
	return ""
}

func checkMQTTSource(p *collector, sp string, i int, src *Source, nameDup bool, seen *sourceSeen) {
	s := src.MQTT
	if s.Format == "" {
		p.add(sp+".format", "missing: use %s", orList(feedFormats))
	} else {
		oneOf(p, sp+".format", s.Format, feedFormats, "feed format")
	}
	checkBroker(p, sp+".broker", s.Broker)
	checkTLS(p, sp+".tls", s.TLS, s.Broker, "an MQTT broker: write ssl://host:8883 (or wss://)")
	checkTopics(p, sp+".topics", s.Topics)
	if msg := mqtt.ShareGroupProblem(s.ShareGroup); msg != "" {
		p.add(sp+".share_group", "%q %s", s.ShareGroup, msg)
	}
	for j, t := range s.Topics {
		if s.ShareGroup != "" && strings.HasPrefix(t, mqtt.SharePrefix) {
			p.add(fmt.Sprintf("%s.topics[%d]", sp, j), "%q is a shared subscription already, and share_group would share it again: write the plain topic", t)
		}
	}
	// A client id derived from a duplicate name is that name's problem.
	if s.ClientID != "" && !(nameDup && s.ClientID == mqtt.ClientIDPrefix+s.Name) {
		if j, dup := seen.clientIDs[s.ClientID]; dup {
			p.add(sp+".client_id", "%q is also the client id of sources[%d]: the broker would end one session whenever the other connects; give each source its own", s.ClientID, j)
		} else {
			seen.clientIDs[s.ClientID] = i
		}
	}
	if s.Password != "" && s.Username == "" {
		p.add(sp+".password", "set without username: MQTT sends a password only with a username; set username")
	}
	if s.QoS != nil && (*s.QoS < 0 || *s.QoS > 2 || p.tree.isFloat(sp+".qos")) {
		p.add(sp+".qos", "%s is not an MQTT QoS: use 0, 1 or 2 (default 1; The Things Stack offers 0 only)", p.tree.text(sp+".qos", strconv.Itoa(*s.QoS)))
	}
	atLeastOne(p, sp+".max_in_flight", s.MaxInFlight, mqtt.DefaultMaxInFlight)
	positive(p, sp+".reconnect_max", s.ReconnectMax, mqtt.DefaultReconnectMax)
	switch {
	case isGatewayBridge(s):
		if src.Frames != nil {
			checkFrames(p, sp, src.Frames)
		}
	case s.UnknownDevices != "" || slices.Contains(feedFormats, s.Format):
		oneOf(p, sp+".unknown_devices", s.UnknownDevices, unknownDevices, "unknown_devices policy")
	}
	checkMap(p, sp+".map", s.Map)
	checkJSON(p, sp, s)
	if st := src.Storage; st != nil {
		if s.QoS != nil && *s.QoS > 0 {
			p.add(sp+".storage", "set with qos %d: the Storage Integration refills what The Things Stack's QoS 0 feed loses; set qos: 0 (its MQTT server offers nothing else)", *s.QoS)
		}
		for _, prob := range st.Problems() {
			key, msg, _ := strings.Cut(prob, ": ")
			p.add(sp+".storage."+key, "%s", msg)
		}
	}
}

func checkUDPSource(p *collector, sp string, i int, u *lorawan.Config, seen *sourceSeen) {
	lp := sp + ".listen"
	if u.Listen == "" {
		p.add(lp, `missing: give the UDP address the packet forwarders send to (their serv_port_up and serv_port_down), e.g. "0.0.0.0:1700"`)
	} else if _, port, err := net.SplitHostPort(u.Listen); err != nil {
		p.add(lp, `%q is not host:port: write e.g. "0.0.0.0:1700", or ":1700" for every interface`, u.Listen)
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		p.add(lp, "port %q is not a UDP port the forwarders can be given: use 1 to 65535 (1700 is the usual one)", port)
	} else if j, dup := seen.listens[u.Listen]; dup {
		p.add(lp, "%q is also where sources[%d] listens: one socket takes each datagram once; give each source its own port", u.Listen, j)
	} else {
		seen.listens[u.Listen] = i
	}
	atLeastOne(p, sp+".max_in_flight", u.MaxInFlight, lorawan.DefaultMaxInFlight)
	positive(p, sp+".drain_timeout", u.DrainTimeout, lorawan.DefaultDrainTimeout)
	checkFrames(p, sp, &u.FrameConfig)
}

// checkFrames checks the frame-handling keys of a source of raw frames.
func checkFrames(p *collector, sp string, f *lorawan.FrameConfig) {
	positive(p, sp+".dedup_window", f.DedupWindow, lorawan.DefaultDedupWindow)
	if f.DedupWindow > maxDedupWindow {
		p.add(sp+".dedup_window", "%s: every uplink waits this long for the other gateways' copies; use at most %s (the default %s covers usual backhaul delays)", f.DedupWindow, maxDedupWindow, lorawan.DefaultDedupWindow)
	}
	oneOf(p, sp+".fcnt_reset", f.FCntReset, fcntResets, "frame-counter reset policy")
	if f.FCntResetMax == 0 || p.tree.isFloat(sp+".fcnt_reset_max") {
		p.add(sp+".fcnt_reset_max", "%s: must be a whole number of at least 1 (default %d)", p.tree.text(sp+".fcnt_reset_max", "0"), lorawan.DefaultFCntResetMax)
	}
	positive(p, sp+".fcnt_reset_gap", f.FCntResetGap, lorawan.DefaultFCntResetGap)
	atLeastOne(p, sp+".dedup_max_frames", f.DedupMaxFrames, lorawan.DefaultDedupMaxFrames)
	// A restart setting under reject would be silently ignored; the
	// default value (as an effective config written back holds it) is not.
	if f.FCntReset != lorawan.FCntResetAcceptLow {
		if f.FCntResetMax != lorawan.DefaultFCntResetMax && p.tree.present(sp+".fcnt_reset_max") {
			p.add(sp+".fcnt_reset_max", "applies to fcnt_reset: %s only: remove it, or set fcnt_reset: %s", lorawan.FCntResetAcceptLow, lorawan.FCntResetAcceptLow)
		}
		if f.FCntResetGap != lorawan.DefaultFCntResetGap && p.tree.present(sp+".fcnt_reset_gap") {
			p.add(sp+".fcnt_reset_gap", "applies to fcnt_reset: %s only: remove it, or set fcnt_reset: %s", lorawan.FCntResetAcceptLow, lorawan.FCntResetAcceptLow)
		}
	}
	if !slices.Contains(frameUnknown, f.UnknownDevices) {
		p.add(sp+".unknown_devices", "%q: use %s (raw frames carry no device name to accept an unknown device with)", f.UnknownDevices, orList(frameUnknown))
	}
}

// checkHTTPSource checks an http source: the package's own rules (format,
// listen, path, auth, TLS, unknown_devices) at their keys, the counts and
// durations as every source's are, and a listen address no other source
// (nor the HTTP API, apiListen) takes.
func checkHTTPSource(p *collector, sp string, i int, h *webhook.Config, apiListen string, seen *sourceSeen) {
	own := map[string]bool{"max_body_bytes": true, "max_in_flight": true, "drain_timeout": true, "retry_after": true}
	for _, pr := range h.Problems() {
		if !own[pr.Key] {
			p.add(joinKey(sp, pr.Key), "%s", pr.Msg)
		}
	}
	if h.Listen != "" {
		key := "tcp " + h.Listen
		if j, dup := seen.listens[key]; dup {
			p.add(sp+".listen", "%q is also where sources[%d] listens: give each http source its own port, or one source with path / for several senders", h.Listen, j)
		} else {
			seen.listens[key] = i
		}
		if h.Listen == apiListen {
			p.add(sp+".listen", "%q is also http.listen, the HTTP API's: give the source its own port", h.Listen)
		}
	}
	atLeastOne(p, sp+".max_body_bytes", h.MaxBodyBytes, webhook.DefaultMaxBodyBytes)
	atLeastOne(p, sp+".max_in_flight", h.MaxInFlight, webhook.DefaultMaxInFlight)
	positive(p, sp+".drain_timeout", h.DrainTimeout, webhook.DefaultDrainTimeout)
	positive(p, sp+".retry_after", h.RetryAfter, webhook.DefaultRetryAfter)
	checkMap(p, sp+".map", h.Map)
	checkJSON(p, sp, &mqtt.Config{Format: h.Format, JSON: h.JSON})
}
