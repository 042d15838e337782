package webhook

import (
	"context"
	"encoding/json"
	"net/url"

	"github.com/sensorgate/sensorgate/gateway/mqtt"
)

// EventUp is the kind of a message that is an uplink; every other kind is
// an event (Event.Type).
const EventUp = "up"

// eventOther counts event kinds no list here names (a network server newer
// than this code), so the counter names stay a closed set.
const eventOther = "other"

// Event is a network-server message that is not an uplink: a ChirpStack
// HTTP integration event other than ?event=up, or a The Things Stack
// webhook message other than uplink_message and uplink_normalized.
type Event struct {
	Source string
	Format string // the source's format: mqtt.FormatTTSV3, …
	// Type is ChirpStack's event parameter (status, join, log, …) or The
	// Things Stack's message field (join_accept, downlink_ack, …); eventOther
	// for one this package does not know.
	Type string
	Body []byte // the request body, as received
}

// EventHandler takes one event. nil means handled (or deliberately
// ignored): the request is answered 204. An error answers 503 with
// Retry-After, so a sender that retries sends it again.
type EventHandler func(ctx context.Context, ev Event) error

// Events routes an event type of a format to its handler; nil (for a
// type, or Events itself) means the event is counted and acknowledged.
// This is the one place device and gateway events (status, join, log;
// The Things Stack's join_accept, …) are to be routed once they become
// points.
type Events func(format, eventType string) EventHandler

// chirpStackEvents are the event parameter values ChirpStack's HTTP
// integration sends: v4 (chirpstack/src/integration/http.rs) and v3
// (chirpstack-application-server internal/integration/http, which has
// error where v4 has log).
var chirpStackEvents = []string{EventUp, "status", "join", "ack", "txack", "log", "location", "integration", "error"}

// messageKind says what a request carries by its query: EventUp for an
// uplink, else the event type. ChirpStack names it (?event=up); a request
// without one is an uplink, as ChirpStack v3's per-event URLs (dataUpURL)
// post uplinks without it. The Things Stack names it in the body only
// (ttsKind).
func messageKind(format string, query url.Values) string {
	switch format {
	case mqtt.FormatChirpStackV4, mqtt.FormatChirpStackV3:
		ev := query.Get("event")
		switch {
		case ev == "":
			return EventUp
		case contains(chirpStackEvents, ev):
			return ev
		}
		return eventOther
	}
	return EventUp
}

// ttsFields are the top-level fields of an ApplicationUp that say its
// kind. A pointer to an empty struct reads an object and keeps nothing.
type ttsFields struct {
	UplinkMessage            *struct{} `json:"uplink_message"`
	UplinkNormalized         *struct{} `json:"uplink_normalized"`
	JoinAccept               *struct{} `json:"join_accept"`
	DownlinkAck              *struct{} `json:"downlink_ack"`
	DownlinkNack             *struct{} `json:"downlink_nack"`
	DownlinkSent             *struct{} `json:"downlink_sent"`
	DownlinkFailed           *struct{} `json:"downlink_failed"`
	DownlinkQueued           *struct{} `json:"downlink_queued"`
	DownlinkQueueInvalidated *struct{} `json:"downlink_queue_invalidated"`
	LocationSolved           *struct{} `json:"location_solved"`
	ServiceData              *struct{} `json:"service_data"`
}

// ttsKind is EventUp for an uplink_message or uplink_normalized message
// (or one that is not a The Things Stack message at all, so the parser's
// error says what is wrong with it), else the message field of the event.
func ttsKind(body []byte) string {
	var f ttsFields
	if json.Unmarshal(body, &f) != nil || f.UplinkMessage != nil || f.UplinkNormalized != nil {
		return EventUp
	}
	for _, k := range []struct {
		set  bool
		name string
	}{
		{f.JoinAccept != nil, "join_accept"}, {f.DownlinkAck != nil, "downlink_ack"}, {f.DownlinkNack != nil, "downlink_nack"},
		{f.DownlinkSent != nil, "downlink_sent"}, {f.DownlinkFailed != nil, "downlink_failed"}, {f.DownlinkQueued != nil, "downlink_queued"},
		{f.DownlinkQueueInvalidated != nil, "downlink_queue_invalidated"}, {f.LocationSolved != nil, "location_solved"},
		{f.ServiceData != nil, "service_data"},
	} {
		if k.set {
			return k.name
		}
	}
	return EventUp
}
