// Package webhook is the Source for HTTP feeds: The Things Stack's
// webhooks and ChirpStack's HTTP integration (v4 and v3), and sensors
// posting their own JSON. Each request is one message; it is answered 2xx
// only once the pipeline says its points are durable in the spool (or the
// message is kept as a dead letter and answered 400), and 503 with
// Retry-After whenever it was not taken, so a sender that retries loses
// nothing and, since points are idempotent, doubles nothing.
//
// The message formats are gateway/mqtt's feed parsers, used as they are:
// a webhook body is byte for byte what the same network server publishes
// over MQTT. This package adds what HTTP needs: authentication (a shared
// secret header, basic or bearer; compared in constant time), a body
// bound that refuses a large body before reading it, a bound on requests
// in flight, graceful draining, and the event kinds that are not uplinks
// (ChirpStack's ?event=status|join|…, The Things Stack's join_accept,
// downlink_* …), which are answered 2xx and counted through one routing
// function (Events) until they have handlers of their own.
//
// It must not decode payloads, look devices up or write to InfluxDB:
// everything past the Uplink happens behind gateway.Handler.
package webhook
