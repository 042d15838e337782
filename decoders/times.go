package decoders

import (
	"fmt"
	"math"
	"time"
)

// How far a reading's own time may lie from its uplink's. A device
// buffering readings sends them late, so a reading may be older than its
// uplink, but not by years; it cannot be from the future, give or take a
// device clock running a little fast. Outside this window the device's
// clock is unset (counting from 1970 or 2000 after a battery change) or
// wrong, and writing the reading there would hide it from every query of
// recent data.
const (
	MaxReadingAge  = 365 * 24 * time.Hour
	MaxReadingLead = 24 * time.Hour
)

var (
	unixEpoch  = time.Unix(0, 0).UTC()
	maxInfluxT = time.Unix(0, math.MaxInt64).UTC()
)

// CheckTimes drops the own time of samples whose time is not plausible
// for an uplink received at uplink: 1970 or before, more than
// MaxReadingLead after it or more than MaxReadingAge before it, or past
// what InfluxDB stores. Such a sample is written at the uplink's time
// instead, and a warning (one per distinct time) says so. A zero uplink
// time checks only the absolute bounds. Samples are changed in place.
func CheckTimes(samples []Sample, uplink time.Time) []string {
	var warnings []string
	var warned []time.Time
	for i := range samples {
		st := samples[i].Time
		if st.IsZero() || plausibleTime(st, uplink) {
			continue
		}
		samples[i].Time = time.Time{}
		seen := false
		for _, w := range warned {
			seen = seen || w.Equal(st)
		}
		if seen {
			continue
		}
		warned = append(warned, st)
		at := "an uplink"
		if !uplink.IsZero() {
			at = "an uplink at " + uplink.UTC().Format(time.RFC3339)
		}
		warnings = append(warnings, fmt.Sprintf("%s: reading time %s is implausible for %s (1970 or before, over %v later or over %d days earlier): the device clock is unset or wrong; written at the uplink's time",
			samples[i].Quantity, st.UTC().Format(time.RFC3339Nano), at, MaxReadingLead, int(MaxReadingAge.Hours()/24)))
	}
	return warnings
}

func plausibleTime(t, uplink time.Time) bool {
	if !t.After(unixEpoch) || t.After(maxInfluxT) {
		return false
	}
	if uplink.IsZero() {
		return true
	}
	return !t.After(uplink.Add(MaxReadingLead)) && !t.Before(uplink.Add(-MaxReadingAge))
}
