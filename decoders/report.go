package decoders

import "time"

// Report is what an operator checking a decoder needs to see of one
// payload: the decoder's own data, the samples the pipeline would write and
// where each lands in InfluxDB, and the warnings. `sensorgate decode` prints
// it and the HTTP API's decode test returns it, both through Explain, so the
// two cannot drift apart.
type Report struct {
	Data     map[string]any // never nil
	Samples  []ReportSample // never nil
	Warnings []string       // the decoder's, then the catalogue check's; never nil
}

// ReportSample is one catalogue sample with its unit and the InfluxDB
// measurement and field it is written to.
type ReportSample struct {
	Quantity    string `json:"quantity"`
	Value       any    `json:"value"`
	Unit        string `json:"unit,omitempty"`
	Measurement string `json:"measurement"`
	Field       string `json:"field"`
	Channel     string `json:"channel,omitempty"`
	Time        string `json:"time,omitempty"` // RFC 3339, UTC; empty: the uplink's time
}

// Explain decodes one payload with d and checks the samples against the
// catalogue, as the pipeline does before writing. A decoder error comes
// back as is, with an empty report; a catalogue error comes back with the
// report's Data filled, since the data is what an operator fixes the
// mapping against. It is not for the hot path: it allocates the report.
func Explain(d Decoder, in Input) (Report, error) {
	rep := Report{Data: map[string]any{}, Samples: []ReportSample{}, Warnings: []string{}}
	res, err := d.Decode(in)
	if err != nil {
		return rep, err
	}
	if data := res.DataMap(); data != nil {
		rep.Data = data
	}
	samples, warnings, err := Check(res.Samples)
	if err != nil {
		return rep, err
	}
	rep.Warnings = append(append(rep.Warnings, res.Warnings...), warnings...)
	rep.Warnings = append(rep.Warnings, CheckTimes(samples, in.Time)...)
	rep.Samples = make([]ReportSample, 0, len(samples))
	for _, s := range samples {
		q, _ := LookupQuantity(s.Quantity) // Check vetted the path
		rs := ReportSample{Quantity: s.Quantity, Value: s.Value.Any(), Unit: q.Unit, Measurement: q.Measurement, Field: q.Field, Channel: s.Channel}
		if !s.Time.IsZero() {
			rs.Time = s.Time.UTC().Format(time.RFC3339Nano)
		}
		rep.Samples = append(rep.Samples, rs)
	}
	return rep, nil
}
