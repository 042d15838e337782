package gateway

// What a re-decode (gateway/redecode) may delete and write again: the
// points a decoder made, and nothing the pipeline wrote from the radio,
// the network server's events or the daemon itself. The classification
// lives here, beside the code that builds the points, so a change of the
// schema (ARCHITECTURE §5) changes it in one place;
// TestDecoderOutputClassifiesPipelinePoints holds it to the points the
// pipeline builds.

// Measurements the pipeline writes that no decoder makes.
const (
	MeasurementUplink        = "uplink"         // radio, counters, raw payload: what re-decoding reads
	MeasurementUplinkGateway = "uplink_gateway" // one point per receiving gateway
	MeasurementDeviceEvent   = "device_event"   // network-server joins and log events
	MeasurementGateway       = "gateway"        // gateway statistics
	MeasurementDeviceHealth  = "device_health"  // the daemon's device health (gateway/health)
	// MeasurementDevice holds the top-level catalogue quantities
	// (battery, batteryLevel) a decoder makes and also the network
	// server's status event (StatusFields), at the event's time.
	MeasurementDevice = "device"
)

// StatusMarkerField is a field every status point of MeasurementDevice
// carries and no decoder output does (the catalogue has no top-level
// externalPower), so a re-decode tells status points from a decoder's
// battery readings by it. StatusFields are the status point's fields.
const StatusMarkerField = "externalPower"

// StatusFields are the fields statusPoints writes.
var StatusFields = []string{"batteryLevel", StatusMarkerField, "margin"}

// DecoderOutput reports whether measurement m holds a decoder's output
// (catalogue measurements and decoded_<model>), which a re-decode
// replaces. For MeasurementDevice it is true, but the points carrying
// StatusMarkerField are a status event's and must be kept.
func DecoderOutput(m string) bool {
	switch m {
	case MeasurementUplink, MeasurementUplinkGateway, MeasurementDeviceEvent, MeasurementGateway, MeasurementDeviceHealth, "":
		return false
	}
	return true
}
