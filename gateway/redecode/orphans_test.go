package redecode

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/gateway"
)

// meterScaled is meterV1 with only its scaling fixed: the same fields,
// other values, so the new points overwrite the old ones and nothing
// needs deleting. meterScaledStrict also refuses payloads shorter than 6
// bytes, so an uplink v1 decoded loses its points.
var (
	meterScaled       = scaledMeter(3)
	meterScaledStrict = scaledMeter(6)
)

func scaledMeter(minLen int) decoders.Mapped {
	m := meterV1
	m.DecodeRecord = func(in decoders.Input, r *decoders.Record) error {
		if len(in.Bytes) < minLen {
			return decoders.ErrTruncated
		}
		r.Number("temperature", float64(int16(binary.BigEndian.Uint16(in.Bytes)))/10)
		r.Number("humidity", float64(in.Bytes[2])/2)
		r.Number("legacy", 1)
		r.Number("light", 5)
		return nil
	}
	return m
}

// TestRedecodeDeletesOnlyOrphans: a fix that changes only values is
// written over the old points without a DELETE, and corrects every
// value; one that leaves an old point without its replacement deletes,
// and leaves no orphan. Both keep the status points and raw uplinks,
// and lose none of the uplinks that reach InfluxDB through the live
// pipeline before each of the job's statements.
func TestRedecodeDeletesOnlyOrphans(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fix     decoders.Decoder
		live    bool // uplinks arrive before each statement
		refused bool // the fix refuses the short uplink
		// deletes are the measurements deleted: the status point's
		// device is done the safe way, which writes it back.
		deletes []string
	}{
		{"values only", meterScaled, false, false, []string{"device"}},
		// Live points next to the old ones count as what is left, and
		// the window is done again the safe way.
		{"values only, live uplinks", meterScaled, true, false, []string{"air", "decoded_meter", "device"}},
		{"an uplink refused", meterScaledStrict, false, true, []string{"air", "decoded_meter", "device"}},
		{"an uplink refused, live uplinks", meterScaledStrict, true, true, []string{"air", "decoded_meter", "device"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, 3, "meter")
			rs := r.readings(400)
			// Half the uplinks are history, the other half, dated between
			// them, arrive while the job runs.
			var hist, live []reading
			for i, rd := range rs {
				if i%2 == 0 {
					hist = append(hist, rd)
				} else {
					live = append(live, rd)
				}
			}
			old := r.pipeline("meter", beforeFix)
			r.live(old, hist)
			short := reading{eui: r.devs[1].EUI, t: t0.Add(90 * time.Second), payload: []byte{1, 2, 3}}
			r.live(old, []reading{short})
			d0 := r.devs[0]
			r.writeLines(fmt.Sprintf("device,dev_eui=%s,device=%s,district=north,model=meter,source=cs batteryLevel=80,externalPower=false,margin=7 %d", d0.EUI, d0.Name, t0.Add(30*time.Second).UnixNano()))
			rawBefore, statusBefore := r.snapshot(gateway.MeasurementUplink), r.snapshot(gateway.MeasurementDevice)

			fixed := r.pipeline("meter", decoderTable{"meter": tc.fix})
			next := 0
			ds := &deleteStore{Store: testStore{r.client}}
			hs := &hookStore{Store: ds, before: func() {
				if tc.live && next < len(live) {
					r.live(fixed, live[next:min(next+2, len(live))])
					next += 2
				}
			}}
			run := r.runner(fixed, hs)
			run.MaxChunk = 60
			if _, err := run.Run(context.Background(), Request{Since: t0, Until: t0.Add(24 * time.Hour)}, nil); err != nil {
				t.Fatal(err)
			}
			if next < len(live) {
				r.live(fixed, live[next:])
			}
			r.settle()

			if got := ds.measurements(); !slices.Equal(got, tc.deletes) {
				t.Errorf("deleted from %v, want %v", got, tc.deletes)
			}
			temps := r.column("air", "temperature")
			for _, rd := range rs {
				if got, _ := temps[keyOf(rd)].(json.Number); got.String() != fmt.Sprint(rd.temp) {
					t.Fatalf("%s air.temperature = %v, want %v", keyOf(rd), temps[keyOf(rd)], rd.temp)
				}
			}
			wantShort := map[bool]any{false: json.Number("25.8"), true: nil}[tc.refused]
			for _, mf := range [][2]string{{"air", "temperature"}, {"air", "lightIntensity"}, {"decoded_meter", "legacy"}, {"decoded_meter", "humidity"}} {
				got := r.column(mf[0], mf[1])[keyOf(short)]
				if tc.refused && got != nil {
					t.Errorf("%s.%s of the uplink the fix refuses: %v left, want none", mf[0], mf[1], got)
				}
				if !tc.refused && got == nil {
					t.Errorf("%s.%s of the short uplink: missing", mf[0], mf[1])
				}
			}
			if got := temps[keyOf(short)]; got != wantShort {
				t.Errorf("air.temperature of the short uplink = %v, want %v", got, wantShort)
			}
			rawAfter := r.snapshot(gateway.MeasurementUplink)
			if a, _ := diffLines(rawBefore, rawAfter); len(a) > 0 || len(rawAfter) != len(rawBefore)+len(live) {
				t.Errorf("raw uplinks changed: gone %v, %d now, want the %d before and the %d live ones", a, len(rawAfter), len(rawBefore), len(live))
			}
			if a, b := diffLines(statusBefore, r.snapshot(gateway.MeasurementDevice)); len(a)+len(b) > 0 {
				t.Errorf("status points changed: gone %v, new %v", a, b)
			}
		})
	}
}

// deleteStore records the measurements DELETE statements name.
type deleteStore struct {
	Store
	mu      sync.Mutex
	deleted map[string]bool
}

var deleteFrom = regexp.MustCompile(`DELETE FROM "([^"]+)"`)

func (d *deleteStore) Exec(ctx context.Context, stmts string) error {
	d.mu.Lock()
	if d.deleted == nil {
		d.deleted = map[string]bool{}
	}
	for _, m := range deleteFrom.FindAllStringSubmatch(stmts, -1) {
		d.deleted[m[1]] = true
	}
	d.mu.Unlock()
	return d.Store.Exec(ctx, stmts)
}

func (d *deleteStore) measurements() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Sorted(maps.Keys(d.deleted))
}
