package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sensorgate/sensorgate/gateway/influx"
	"github.com/sensorgate/sensorgate/gateway/lorawan"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
)

// validateInPackage runs the Validate of the package that runs the source:
// what config accepts, the daemon must be able to start.
func (s *Source) validateInPackage() error {
	var errs []error
	if s.MQTT != nil {
		errs = append(errs, s.MQTT.Validate())
	}
	if s.UDP != nil {
		errs = append(errs, s.UDP.Validate())
	}
	if s.HTTP != nil {
		errs = append(errs, s.HTTP.Validate())
	}
	if s.Frames != nil {
		errs = append(errs, s.Frames.Validate())
	}
	return errors.Join(errs...)
}

// udpBase is base with a second, semtech-udp source from line 10 on.
const udpBase = base + `  - name: gw
    type: semtech-udp
    listen: "0.0.0.0:1700"
`

// bridgeBase is base with a second, gateway-bridge source from line 10 on.
const bridgeBase = base + `  - name: bridge
    type: mqtt
    format: gateway-bridge
    broker: tcp://127.0.0.1:1883
    topics: ["+/gateway/+/event/up"]
`

func TestSourceTypes(t *testing.T) {
	cfg, err := parseString(udpBase+lines("  - name: bridge", "    type: mqtt", "    format: gateway-bridge",
		"    broker: tcp://127.0.0.1:1883", "    topics: [\"+/gateway/+/event/up\"]", "    dedup_window: 500ms", "    unknown_devices: reject"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Sources) != 3 {
		t.Fatalf("%d sources", len(cfg.Sources))
	}
	cs, udp, br := cfg.Sources[0], cfg.Sources[1], cfg.Sources[2]
	if cs.Type != SourceMQTT || cs.MQTT == nil || cs.UDP != nil || cs.Frames != nil || cs.Name() != "cs" {
		t.Errorf("mqtt source %+v", cs)
	}
	if _, ok := cs.FrameConfig(); ok {
		t.Error("a chirpstack-v4 source has a frame config")
	}
	want := lorawan.Config{Name: "gw", Type: SourceSemtechUDP, Listen: "0.0.0.0:1700", MaxInFlight: lorawan.DefaultMaxInFlight,
		DrainTimeout: lorawan.DefaultDrainTimeout, FrameConfig: lorawan.FrameConfig{DedupWindow: lorawan.DefaultDedupWindow,
			FCntReset: lorawan.FCntResetReject, FCntResetMax: lorawan.DefaultFCntResetMax, FCntResetGap: lorawan.DefaultFCntResetGap, UnknownDevices: lorawan.UnknownDrop,
			DedupMaxFrames: lorawan.DefaultDedupMaxFrames}}
	if udp.Type != SourceSemtechUDP || udp.MQTT != nil || udp.UDP == nil || *udp.UDP != want || udp.Name() != "gw" {
		t.Errorf("semtech-udp source %+v, want UDP %+v", udp, want)
	}
	if fc, ok := udp.FrameConfig(); !ok || fc != want.FrameConfig {
		t.Errorf("FrameConfig() = %+v %v", fc, ok)
	}
	wantFrames := lorawan.FrameConfig{DedupWindow: 500 * time.Millisecond, FCntReset: lorawan.FCntResetReject,
		FCntResetMax: lorawan.DefaultFCntResetMax, FCntResetGap: lorawan.DefaultFCntResetGap, UnknownDevices: lorawan.UnknownReject,
		DedupMaxFrames: lorawan.DefaultDedupMaxFrames}
	if br.MQTT == nil || br.MQTT.Format != mqtt.FormatGatewayBridge || br.Frames == nil || *br.Frames != wantFrames || br.MQTT.ClientID != "sensorgate-bridge" {
		t.Errorf("gateway-bridge source %+v frames %+v, want %+v", br.MQTT, br.Frames, wantFrames)
	}
	for i, s := range cfg.Sources {
		if err := s.validateInPackage(); err != nil {
			t.Errorf("sources[%d]: %v", i, err)
		}
	}
	// A gateway-bridge source drops unknown DevAddrs by default, like semtech-udp.
	cfg, err = parseString(bridgeBase, nil)
	if err != nil {
		t.Fatal(err)
	}
	if br := cfg.Sources[1]; br.MQTT.UnknownDevices != lorawan.UnknownDrop || br.Frames.UnknownDevices != lorawan.UnknownDrop {
		t.Errorf("gateway-bridge unknown_devices default: %q / %q", br.MQTT.UnknownDevices, br.Frames.UnknownDevices)
	}
}

func TestSourceProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []want
	}{
		{"type missing, guessed from listen", edit(udpBase, "    type: semtech-udp"),
			[]want{{10, "sources[1].type", "missing: use mqtt, semtech-udp or http (listen suggests semtech-udp)"}}},
		{"type missing, guessed from broker", edit(base, "    type: mqtt"),
			[]want{{5, "sources[0].type", "missing: use mqtt, semtech-udp or http (broker suggests mqtt)"}}},
		{"unknown type", edit(udpBase, "    type: semtech-udp", "    type: semtech"),
			[]want{{11, "sources[1].type", `"semtech" is not a source type: use mqtt, semtech-udp or http`}}},
		{"typo in a semtech-udp key", udpBase + lines("    dedup_windo: 1s"),
			[]want{{13, "sources[1].dedup_windo", `unknown key "dedup_windo": did you mean "dedup_window"?`}}},
		{"mqtt key in a semtech-udp source", udpBase + lines("    broker: tcp://h:1883"),
			[]want{{13, "sources[1].broker", `key "broker" does not apply to this source (type semtech-udp): it is a key of mqtt sources`}}},
		{"frame key in a chirpstack source", base + lines("    dedup_window: 1s"),
			[]want{{10, "sources[0].dedup_window", `key "dedup_window" does not apply to this source (type mqtt): it is a key of mqtt sources of format gateway-bridge and semtech-udp sources`}}},
		{"semtech-udp key in a gateway-bridge source", bridgeBase + lines("    listen: :1700"),
			[]want{{15, "sources[1].listen", `it is a key of semtech-udp sources`}}},
		{"listen missing", edit(udpBase, `    listen: "0.0.0.0:1700"`),
			[]want{{10, "sources[1].listen", "missing: give the UDP address the packet forwarders send to"}}},
		{"listen not host:port", edit(udpBase, `    listen: "0.0.0.0:1700"`, `    listen: "1700"`),
			[]want{{12, "sources[1].listen", `"1700" is not host:port`}}},
		{"listen port 0", edit(udpBase, `    listen: "0.0.0.0:1700"`, `    listen: "127.0.0.1:0"`),
			[]want{{12, "sources[1].listen", `port "0" is not a UDP port`}}},
		{"same listen twice", udpBase + lines("  - name: gw2", "    type: semtech-udp", `    listen: "0.0.0.0:1700"`),
			[]want{{15, "sources[2].listen", `"0.0.0.0:1700" is also where sources[1] listens`}}},
		{"name shared across types", edit(udpBase, "  - name: gw", "  - name: cs"),
			[]want{{10, "sources[1].name", `"cs" is also the name of sources[0]`}}},
		{"numbers and durations", udpBase + lines("    max_in_flight: 0", "    drain_timeout: -1s", "    dedup_window: 11s", "    fcnt_reset_max: 2.5"),
			[]want{
				{13, "sources[1].max_in_flight", "0: must be a whole number of at least 1 (default 1024)"},
				{14, "sources[1].drain_timeout", "-1s is negative"},
				{15, "sources[1].dedup_window", "11s: every uplink waits this long"},
				{16, "sources[1].fcnt_reset_max", "2.5: must be a whole number of at least 1 (default 16)"},
			}},
		{"policies", udpBase + lines("    fcnt_reset: lenient", "    unknown_devices: accept"),
			[]want{
				{13, "sources[1].fcnt_reset", `"lenient" is not a frame-counter reset policy: use reject or accept-low`},
				{14, "sources[1].unknown_devices", `"accept": use drop or reject (raw frames carry no device name`},
			}},
		{"accept-low keys without accept-low", udpBase + lines("    fcnt_reset_max: 4", "    fcnt_reset_gap: 1h"),
			[]want{
				{13, "sources[1].fcnt_reset_max", "applies to fcnt_reset: accept-low only"},
				{14, "sources[1].fcnt_reset_gap", "applies to fcnt_reset: accept-low only"},
			}},
		{"accept-low with its keys", udpBase + lines("    fcnt_reset: accept-low", "    fcnt_reset_max: 4", "    fcnt_reset_gap: 1h"), nil},
		{"gateway-bridge unknown_devices", bridgeBase + lines("    unknown_devices: accept", "    fcnt_reset_max: 0", "    fcnt_reset: accept-low"),
			[]want{
				{15, "sources[1].unknown_devices", `"accept": use drop or reject`},
				{16, "sources[1].fcnt_reset_max", "0: must be a whole number of at least 1 (default 16)"},
			}},
		{"a type error keeps the other sources in place", edit(udpBase, "  - name: cs", "  - name: cs", "    qos: [1]") + lines("    max_in_flight: many"),
			[]want{
				{6, "sources[0].qos", "is a list, but a single value belongs here"},
				{14, "sources[1].max_in_flight", `"many" is not a whole number`},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseString(tt.src, nil)
			checkProblems(t, err, tt.want)
		})
	}
}

// TestSourceYAMLRoundTrip: a Config written back as YAML (with its
// defaults) loads to the same sources.
func TestSourceYAMLRoundTrip(t *testing.T) {
	cfg, err := parseString(udpBase+strings.TrimPrefix(bridgeBase, base), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	again, err := parseString(string(b), nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	for i := range cfg.Sources {
		a, b := cfg.Sources[i], again.Sources[i]
		if a.Type != b.Type || (a.UDP != nil) != (b.UDP != nil) || a.UDP != nil && *a.UDP != *b.UDP ||
			(a.Frames != nil) != (b.Frames != nil) || a.Frames != nil && *a.Frames != *b.Frames || a.Name() != b.Name() {
			t.Errorf("sources[%d] = %+v, after a round trip %+v", i, a, b)
		}
	}
}

func TestSourceInCode(t *testing.T) {
	c := Config{Influx: influx.Config{URL: "http://127.0.0.1:8086", Bucket: "b"}, Sources: Sources{
		{Type: SourceSemtechUDP, UDP: &lorawan.Config{Name: "gw", Listen: ":1700"}},
		{Type: SourceMQTT, MQTT: &mqtt.Config{Name: "br", Type: "mqtt", Format: mqtt.FormatGatewayBridge, Broker: "tcp://h:1883", Topics: []string{"+/gateway/+/event/up"}}},
		{Type: SourceMQTT},
	}}
	c.SetDefaults()
	err := c.Validate()
	if err == nil || err.Error() != "sources[2]: type mqtt without its settings: fill Source.MQTT, Source.UDP or Source.HTTP" {
		t.Fatalf("Validate() = %v", err)
	}
	if f := c.Sources[1].Frames; f == nil || f.DedupWindow != lorawan.DefaultDedupWindow || f.UnknownDevices != lorawan.UnknownDrop {
		t.Errorf("gateway-bridge frames defaults: %+v", f)
	}
	if u := c.Sources[0].UDP; u.MaxInFlight != lorawan.DefaultMaxInFlight || u.FCntResetMax != lorawan.DefaultFCntResetMax {
		t.Errorf("semtech-udp defaults: %+v", u)
	}
}
