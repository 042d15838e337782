package health

import (
	"sort"
	"time"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
)

// Measurement is the measurement of device health points (ARCHITECTURE §5).
const Measurement = "device_health"

// Points turns health reports into device_health points at now. Tags are
// those of the device's other points (device, dev_eui, model, source and
// the allowed device tags from reg), so analysts join on them; field
// types never change: counts are integers, the rest floats, silent a
// boolean.
func Points(reports []devices.DeviceHealth, reg gateway.DeviceLookup, allowed []string, now time.Time) []gateway.Point {
	pts := make([]gateway.Point, 0, len(reports))
	for _, h := range reports {
		tags := []gateway.Tag{{Key: "dev_eui", Value: h.DevEUI.String()}, {Key: "device", Value: h.Name}}
		if h.Model != "" {
			tags = append(tags, gateway.Tag{Key: "model", Value: h.Model})
		}
		if h.Source != "" {
			tags = append(tags, gateway.Tag{Key: "source", Value: h.Source})
		}
		if d, ok := reg.Lookup(h.DevEUI); ok {
			for _, k := range allowed {
				if v := d.Tags[k]; v != "" && !pointTag(k) {
					tags = append(tags, gateway.Tag{Key: k, Value: v})
				}
			}
		}
		sort.Slice(tags, func(i, j int) bool { return tags[i].Key < tags[j].Key })
		f := []gateway.Field{
			gateway.IntField("dead_letters_24h", int64(h.DeadLetters24h)),
			gateway.FloatField("last_seen_age_s", h.LastSeenAge),
			gateway.FloatField("loss_pct", h.LossPct),
			gateway.IntField("lost_24h", int64(h.Lost24h)),
			gateway.BoolField("silent", h.Silent),
			gateway.IntField("uplinks_24h", int64(h.Uplinks24h)),
		}
		opt := func(k string, v *float64) {
			if v != nil {
				f = append(f, gateway.FloatField(k, *v))
			}
		}
		opt("battery", h.Battery)
		opt("battery_level", h.BatteryLevel)
		if h.Interval > 0 {
			f = append(f, gateway.FloatField("interval_s", h.Interval))
		}
		opt("rssi", h.RSSI)
		opt("snr", h.SNR)
		sort.Slice(f, func(i, j int) bool { return f[i].Key < f[j].Key })
		pts = append(pts, gateway.Point{Measurement: Measurement, Tags: tags, Fields: f, Time: now})
	}
	return pts
}

// pointTag reports the tag keys sensorgate itself writes on every point:
// a device tag of the same key is left off.
func pointTag(k string) bool {
	switch k {
	case "device", "dev_eui", "model", "source", "channel":
		return true
	}
	return false
}
