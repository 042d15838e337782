package config

import (
	"errors"

	"gopkg.in/yaml.v3"

	"github.com/sensorgate/sensorgate/gateway/lorawan"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
	"github.com/sensorgate/sensorgate/gateway/ttsstorage"
	"github.com/sensorgate/sensorgate/gateway/webhook"
)

// Source types: the type key of an entry of sources.
const (
	SourceMQTT       = "mqtt"
	SourceSemtechUDP = lorawan.SourceType
	SourceHTTP       = webhook.SourceType
)

// Source is one entry of sources. Its type says which package runs it,
// and so which of that package's config structs holds its settings; the
// others are nil. One list keeps the order the operator wrote and names
// unique across all feeds, and each package keeps owning its keys.
type Source struct {
	// Type is SourceMQTT, SourceSemtechUDP or SourceHTTP; anything else (or nothing)
	// leaves every struct nil and is reported by Validate.
	Type string
	// MQTT is a type mqtt source.
	MQTT *mqtt.Config
	// UDP is a type semtech-udp source: a Semtech UDP packet-forwarder
	// listener.
	UDP *lorawan.Config
	// HTTP is a type http source: network-server webhooks.
	HTTP *webhook.Config
	// Frames is the frame handling of a type mqtt source of format
	// gateway-bridge, whose raw frames need it as a semtech-udp source
	// does: its keys (dedup_window, fcnt_reset, …, unknown_devices) are
	// written among the mqtt keys. Nil for other sources.
	Frames *lorawan.FrameConfig
	// Storage is the storage key of a type mqtt source of format tts-v3:
	// where The Things Stack's Storage Integration refills what the QoS 0
	// feed lost while disconnected. Nil when the key is absent.
	Storage *ttsstorage.Config
}

// storageKeys is the one key of a tts-v3 mqtt source that
// gateway/ttsstorage owns, decoded from the same entry as the mqtt keys.
type storageKeys struct {
	Storage *ttsstorage.Config `yaml:"storage"`
}

// isTTS reports whether an mqtt source reads The Things Stack's feed.
func isTTS(c *mqtt.Config) bool { return c != nil && c.Format == mqtt.FormatTTSV3 }

// Sources is the sources list. Its unmarshaller keeps every entry, even
// one with a value of the wrong type, so that sources[i] in a problem is
// the entry the operator wrote at index i (yaml.v3 drops a list item whose
// unmarshaller failed).
type Sources []Source

// UnmarshalYAML decodes each entry by its type and returns their type
// errors together.
func (l *Sources) UnmarshalYAML(n *yaml.Node) error {
	for i := 0; n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	if n.Kind != yaml.SequenceNode {
		var probe []Source // the decoder's own error: "is a mapping, but a list belongs here"
		return n.Decode(&probe)
	}
	out := make(Sources, len(n.Content))
	var errs []error
	for i, item := range n.Content {
		errs = append(errs, out[i].UnmarshalYAML(item))
	}
	*l = out
	return joinTypeErrors(errs...)
}

// Name is the source's name, whatever its type; "" when the type is unknown.
func (s *Source) Name() string {
	switch {
	case s.MQTT != nil:
		return s.MQTT.Name
	case s.UDP != nil:
		return s.UDP.Name
	case s.HTTP != nil:
		return s.HTTP.Name
	}
	return ""
}

// FrameConfig is the frame-handling policy of a source of raw LoRaWAN
// frames (semtech-udp, or mqtt with format gateway-bridge); ok is false for
// every other source.
func (s *Source) FrameConfig() (fc lorawan.FrameConfig, ok bool) {
	switch {
	case s.UDP != nil:
		return s.UDP.FrameConfig, true
	case s.Frames != nil:
		return *s.Frames, true
	}
	return lorawan.FrameConfig{}, false
}

// isGatewayBridge reports whether an mqtt source carries raw frames.
func isGatewayBridge(c *mqtt.Config) bool { return c != nil && c.Format == mqtt.FormatGatewayBridge }

// UnmarshalYAML decodes the entry into the struct its type key names.
// Type errors come back as one *yaml.TypeError, so the config's decoder
// reports each at its line like any other.
func (s *Source) UnmarshalYAML(n *yaml.Node) error {
	var head struct {
		Type   string `yaml:"type"`
		Format string `yaml:"format"`
	}
	if err := n.Decode(&head); err != nil {
		return err
	}
	*s = Source{Type: head.Type}
	switch head.Type {
	case SourceMQTT:
		s.MQTT = new(mqtt.Config)
		err := n.Decode(s.MQTT)
		if isTTS(s.MQTT) {
			var k storageKeys
			err = joinTypeErrors(err, n.Decode(&k))
			s.Storage = k.Storage
		}
		if !isGatewayBridge(s.MQTT) {
			return err
		}
		// The frame keys are decoded again from the same entry; the keys
		// both structs have (unknown_devices) are one value.
		s.Frames = new(lorawan.FrameConfig)
		return joinTypeErrors(err, n.Decode(s.Frames))
	case SourceSemtechUDP:
		s.UDP = new(lorawan.Config)
		return n.Decode(s.UDP)
	case SourceHTTP:
		s.HTTP = new(webhook.Config)
		return n.Decode(s.HTTP)
	}
	return nil // the type is Validate's to report
}

// MarshalYAML writes the entry as the file holds it: the keys of its
// type's struct (and, for gateway-bridge, the frame keys) in one mapping.
func (s Source) MarshalYAML() (any, error) {
	var parts []any
	switch {
	case s.MQTT != nil:
		parts = append(parts, s.MQTT)
		if s.Frames != nil {
			parts = append(parts, s.Frames)
		}
		if s.Storage != nil {
			parts = append(parts, storageKeys{s.Storage})
		}
	case s.UDP != nil:
		parts = append(parts, s.UDP)
	case s.HTTP != nil:
		parts = append(parts, s.HTTP)
	default:
		return map[string]string{"type": s.Type}, nil
	}
	return mergedMapping(parts...)
}

// mergedMapping encodes each value and joins their mappings; a key that
// several have is written once, from the first.
func mergedMapping(parts ...any) (*yaml.Node, error) {
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	seen := map[string]bool{}
	for _, p := range parts {
		var n yaml.Node
		if err := n.Encode(p); err != nil {
			return nil, err
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i].Value; !seen[k] {
				seen[k] = true
				out.Content = append(out.Content, n.Content[i], n.Content[i+1])
			}
		}
	}
	return out, nil
}

// joinTypeErrors merges yaml type errors; any other error wins.
func joinTypeErrors(errs ...error) error {
	var all []string
	for _, err := range errs {
		if err == nil {
			continue
		}
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return err
		}
		all = append(all, te.Errors...)
	}
	if len(all) == 0 {
		return nil
	}
	return &yaml.TypeError{Errors: all}
}
