package redecode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
)

// history writes n uplinks decoded by the buggy codec, plus what a
// re-decode must leave alone: a status point, a join event, an uplink
// whose stored payload is not base64 and one the fixed codec refuses.
func history(t *testing.T, r *rig, n int, model string) (rs []reading, short reading, statusLine string) {
	t.Helper()
	rs = r.readings(n)
	p := r.pipeline(model, beforeFix)
	r.live(p, rs)
	short = reading{eui: r.devs[1].EUI, t: t0.Add(90 * time.Second), payload: []byte{1, 2, 3}} // v1 takes it, v2 refuses
	r.live(p, []reading{short})
	d0 := r.devs[0]
	tags := fmt.Sprintf("dev_eui=%s,device=%s,district=north,model=%s,source=cs", d0.EUI, d0.Name, model)
	statusLine = fmt.Sprintf("device,%s batteryLevel=80,externalPower=false,margin=7 %d", tags, t0.Add(30*time.Second).UnixNano())
	r.writeLines(
		statusLine,
		fmt.Sprintf("device_event,%s,type=join dev_addr=\"01020304\" %d", tags, t0.Add(40*time.Second).UnixNano()),
		fmt.Sprintf("device_health,%s frames_lost=0,silent=false %d", tags, t0.Add(45*time.Second).UnixNano()),
		fmt.Sprintf("uplink,%s f_port=2i,payload=\"%%%%not base64\" %d", tags, t0.Add(50*time.Second).UnixNano()),
		// A device the registry does not know: the network server decoded it.
		fmt.Sprintf("uplink,dev_eui=%s,device=stranger,model=ns-profile,source=cs f_port=2i,payload=\"AQID\" %d", stranger, t0.Add(70*time.Second).UnixNano()),
		fmt.Sprintf("decoded_ns_profile,dev_eui=%s,device=stranger,model=ns-profile,source=cs level=3 %d", stranger, t0.Add(70*time.Second).UnixNano()),
	)
	return rs, short, statusLine
}

// stranger is a device outside the registry, decoded by the network
// server: a re-decode leaves it alone.
const stranger = "ffffffffffff0001"

// raw is what a re-decode must never change.
func raw(r *rig) []string {
	return r.snapshot(gateway.MeasurementUplink, gateway.MeasurementUplinkGateway, gateway.MeasurementDeviceEvent, gateway.MeasurementDeviceHealth, "decoded_ns_profile")
}

// checkFixed asserts that every reading's decoded and normalized values
// are the fixed codec's, and that no field only the buggy codec wrote is
// left anywhere.
func checkFixed(t testing.TB, r *rig, rs []reading, short reading, model string) {
	t.Helper()
	decoded := gateway.DecodedMeasurement(model)
	mine := map[string]bool{}
	for _, rd := range rs {
		mine[rd.eui.String()] = true
	}
	// column of the devices of rs only.
	column := func(m, f string) map[string]any {
		c := r.column(m, f)
		for k := range c {
			if eui, _, _ := strings.Cut(k, "@"); !mine[eui] {
				delete(c, k)
			}
		}
		return c
	}
	cols := map[string]map[string]any{}
	for _, mf := range [][2]string{{"air", "temperature"}, {"air", "relativeHumidity"}, {"air", "pressure"}, {decoded, "temperature"}, {decoded, "rh"}, {decoded, "pressure"}} {
		cols[mf[0]+"."+mf[1]] = column(mf[0], mf[1])
	}
	var wrong []string
	for _, rd := range rs {
		k := keyOf(rd)
		for name, want := range map[string]float64{"air.temperature": rd.temp, "air.relativeHumidity": rd.hum, "air.pressure": rd.pressure,
			decoded + ".temperature": rd.temp, decoded + ".rh": rd.hum, decoded + ".pressure": rd.pressure} {
			got, _ := cols[name][k].(json.Number)
			if f, err := got.Float64(); err != nil || f != want {
				wrong = append(wrong, fmt.Sprintf("%s %s = %v, want %v", k, name, cols[name][k], want))
			}
		}
	}
	if len(wrong) > 0 {
		t.Fatalf("%d values not corrected, e.g. %v", len(wrong), wrong[:min(5, len(wrong))])
	}
	for name, c := range cols {
		if len(c) != len(rs) {
			t.Errorf("%s holds %d values, want %d (one per uplink the fixed codec decodes)", name, len(c), len(rs))
		}
	}
	for _, orphan := range [][2]string{{"air", "lightIntensity"}, {decoded, "humidity"}, {decoded, "legacy"}, {decoded, "light"}} {
		if n := len(column(orphan[0], orphan[1])); n > 0 {
			t.Errorf("%s.%s: %d orphaned values of the old codec left", orphan[0], orphan[1], n)
		}
	}
	if _, ok := r.column("air", "temperature")[keyOf(short)]; ok && short.payload != nil {
		t.Errorf("the uplink the fixed codec refuses kept its old decoded points")
	}
}

// TestRedecodeFixesHistory is the decoder-fix scenario against a real
// InfluxDB: a dry run changes nothing and reports the difference; the
// run corrects every value, leaves no field of the old codec, keeps raw
// uplinks, gateway receptions, events and status points as they were,
// counts the stored uplinks it cannot decode; running it again, over a
// huge range, changes nothing.
//
// It runs with windows of at most 200 uplinks (each device cut into
// windows) and of 5,000 (the devices deleted and read as one group).
func TestRedecodeFixesHistory(t *testing.T) {
	for _, chunk := range []int{200, 5000} {
		t.Run(fmt.Sprintf("max_chunk=%d", chunk), func(t *testing.T) { testRedecodeFixesHistory(t, chunk) })
	}
}

func testRedecodeFixesHistory(t *testing.T, chunk int) {
	r := newRig(t, 5, "meter")
	rs, short, _ := history(t, r, 1000, "meter")
	ctx := context.Background()
	rawBefore, all := raw(r), r.snapshot()
	statusBefore := r.snapshot(gateway.MeasurementDevice)
	run := r.runner(r.pipeline("meter", afterFix), nil)
	run.MaxChunk = chunk
	req := Request{Since: t0.Add(-time.Hour), Until: t0.Add(2 * 1000 * time.Minute)}

	dry := req
	dry.DryRun = true
	rep, err := run.Run(ctx, dry, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.settle()
	if a, b := diffLines(all, r.snapshot()); len(a)+len(b) > 0 {
		t.Fatalf("the dry run changed InfluxDB: gone %v, new %v", a, b)
	}
	if len(rep.Diffs) != 5 { // the stranger is skipped
		t.Fatalf("dry run: %d device diffs, want 5: %+v", len(rep.Diffs), rep.Diffs)
	}
	d := rep.Diffs[0]
	wantAdded := []string{"air.pressure", "decoded_meter.pressure", "decoded_meter.rh"}
	wantRemoved := []string{"air.lightIntensity", "decoded_meter.humidity", "decoded_meter.legacy", "decoded_meter.light"}
	if !slices.Equal(d.FieldsAdded, wantAdded) || !slices.Equal(d.FieldsRemoved, wantRemoved) {
		t.Errorf("dry run fields added %v, removed %v; want %v, %v", d.FieldsAdded, d.FieldsRemoved, wantAdded, wantRemoved)
	}
	if d.PointsBefore != 2*200 || d.PointsAfter != 2*200 || d.PointsChanged != 2*200 {
		t.Errorf("dry run of %s: points before %d, after %d, changed %d; want 400 each (air and decoded_meter of 200 uplinks)", d.DevEUI, d.PointsBefore, d.PointsAfter, d.PointsChanged)
	}
	for _, fr := range d.Ranges {
		if fr.Field == "air.temperature" && (fr.Before == nil || fr.After == nil || fr.After.Max != 10*fr.Before.Max || fr.After.Min != 10*fr.Before.Min) {
			t.Errorf("air.temperature range: before %+v, after %+v; want after = 10 × before", fr.Before, fr.After)
		}
	}

	var progress []Progress
	rep, err = run.Run(ctx, req, func(p Progress) { progress = append(progress, p) })
	if err != nil {
		t.Fatal(err)
	}
	r.settle()
	checkFixed(t, r, rs, short, "meter")
	if a, b := diffLines(rawBefore, raw(r)); len(a)+len(b) > 0 {
		t.Errorf("raw uplinks, receptions, events or health changed: gone %v, new %v", a, b)
	}
	if a, b := diffLines(statusBefore, r.snapshot(gateway.MeasurementDevice)); len(a)+len(b) > 0 {
		t.Errorf("status points changed: gone %v, new %v", a, b)
	}
	p := rep.Progress
	if p.Uplinks != 1002 || p.UplinksDone != 1002 || p.Malformed != 1 || p.DecodeErrors != 1 || p.Devices != 6 || p.DevicesDone != 6 || p.Skipped != 1 {
		t.Errorf("progress %+v: want 1002 uplinks done of 6 devices, 1 skipped, 1 malformed, 1 decode error", p)
	}
	if len(rep.Skipped) != 1 || rep.Skipped[0].DevEUI != stranger || !strings.Contains(rep.Skipped[0].Reason, "not in the registry") {
		t.Errorf("skipped %+v, want %s as not in the registry", rep.Skipped, stranger)
	}
	if len(progress) == 0 || progress[len(progress)-1] != p {
		t.Errorf("progress callbacks end with %+v, want the report's %+v", progress[len(progress)-1:], p)
	}

	// Resuming or repeating is running it again: the same points.
	fixed := r.snapshot()
	huge := Request{Since: time.Date(1971, 1, 1, 0, 0, 0, 0, time.UTC), Until: time.Now().Add(24 * time.Hour)}
	if _, err := run.Run(ctx, huge, nil); err != nil {
		t.Fatal(err)
	}
	r.settle()
	if a, b := diffLines(fixed, r.snapshot()); len(a)+len(b) > 0 {
		t.Fatalf("a second run changed InfluxDB: gone %v, new %v", a, b)
	}
}

// TestRedecodeModelOverride: a device registered with the wrong model is
// decoded again with the right one; its old decoded_<model> measurement
// leaves no point in the range, and other devices are left alone.
func TestRedecodeModelOverride(t *testing.T) {
	r := newRig(t, 2, "meter-old")
	rs := r.readings(200)
	r.live(r.pipeline("meter-old", beforeFix), rs)
	other := func() []string {
		var out []string
		for _, l := range r.snapshot() {
			if strings.Contains(l, r.devs[1].EUI.String()) {
				out = append(out, l)
			}
		}
		return out
	}
	otherBefore := other()
	dev0 := r.devs[0].EUI
	_, err := r.runner(r.pipeline("meter-old", afterFix), nil).Run(context.Background(), Request{
		Since: t0, Until: t0.Add(time.Hour * 24), Devices: []devices.EUI{dev0}, ModelOverride: "meter"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.settle()
	var mine []reading
	for _, rd := range rs {
		if rd.eui == dev0 {
			mine = append(mine, rd)
		}
	}
	checkFixed(t, r, mine, reading{}, "meter")
	if n := len(r.db.Query(t, `SELECT * FROM "decoded_meter_old" WHERE "dev_eui" = '`+dev0.String()+`'`)); n != 0 {
		t.Errorf("decoded_meter_old still holds points of %s", dev0)
	}
	if a, b := diffLines(otherBefore, other()); len(a)+len(b) > 0 {
		t.Errorf("the other device's points changed: gone %v, new %v", a, b)
	}
}

// TestRedecodeResumes: a job that stops midway (InfluxDB stopped, or the
// job cancelled) fails with an error saying to run it again, loses no
// raw uplink, and the next run finishes the fix.
func TestRedecodeResumes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(r *rig, cancel context.CancelFunc) func()
		want  string
	}{
		{"influxdb stopped", func(r *rig, _ context.CancelFunc) func() { return r.db.Stop }, "unreachable"},
		{"cancelled", func(_ *rig, cancel context.CancelFunc) func() { return cancel }, "interrupted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, 3, "meter")
			rs, short, _ := history(t, r, 300, "meter")
			rawBefore := raw(r)
			p := r.pipeline("meter", afterFix)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			// The 20th statement: within the second device.
			fs := &faultStore{Store: testStore{r.client}, n: 20, hook: tc.fault(r, cancel)}
			run := r.runner(p, fs)
			run.MaxChunk = 40
			rep, err := run.Run(ctx, Request{Since: t0, Until: t0.Add(24 * time.Hour)}, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "run the same command again") {
				t.Fatalf("stopped job: %v; want an error with %q telling to run it again", err, tc.want)
			}
			if rep.Progress.DevicesDone == 0 || rep.Progress.UplinksDone == 0 || rep.Progress.UplinksDone >= rep.Progress.Uplinks {
				t.Fatalf("the fault did not hit midway: %+v", rep.Progress)
			}
			if tc.name == "influxdb stopped" {
				r.db.Start()
			}
			r.settle()
			if a, b := diffLines(rawBefore, raw(r)); len(a)+len(b) > 0 {
				t.Fatalf("raw uplinks changed: gone %v, new %v", a, b)
			}
			if _, err := r.runner(p, nil).Run(context.Background(), Request{Since: t0, Until: t0.Add(24 * time.Hour)}, nil); err != nil {
				t.Fatal(err)
			}
			r.settle()
			checkFixed(t, r, rs, short, "meter")
		})
	}
}

// TestRedecodeKeepsLiveUplinks: uplinks dated inside the range reach
// InfluxDB through the live pipeline while the job works on their
// window, just before its delete and just after it; every one of them
// ends with its decoded points.
func TestRedecodeKeepsLiveUplinks(t *testing.T) {
	r := newRig(t, 2, "meter")
	rs := r.readings(400)
	r.live(r.pipeline("meter", beforeFix), rs[:200])
	livePipe := r.pipeline("meter", afterFix) // the daemon decodes with the fixed codec
	live := rs[200:]
	next := 0
	arrive := func() {
		// Two uplinks reach InfluxDB now, before the statement runs.
		if next < len(live) {
			r.live(livePipe, live[next:min(next+2, len(live))])
			next += 2
		}
	}
	fs := &hookStore{Store: testStore{r.client}, before: arrive}
	run := r.runner(livePipe, fs)
	run.MaxChunk = 30
	if _, err := run.Run(context.Background(), Request{Since: t0, Until: t0.Add(24 * time.Hour)}, nil); err != nil {
		t.Fatal(err)
	}
	if next < len(live) {
		r.live(livePipe, live[next:]) // the rest arrive after the job
	}
	r.settle()
	if fs.execs == 0 {
		t.Fatal("no delete ran")
	}
	checkFixed(t, r, rs, reading{}, "meter")
}

// hookStore calls before ahead of every statement, one at a time.
type hookStore struct {
	Store
	before func()
	mu     sync.Mutex
	execs  int
}

func (h *hookStore) Query(ctx context.Context, q string) ([]Series, error) {
	h.mu.Lock()
	h.before()
	h.mu.Unlock()
	return h.Store.Query(ctx, q)
}

func (h *hookStore) Exec(ctx context.Context, s string) error {
	h.mu.Lock()
	h.before()
	h.execs++
	h.mu.Unlock()
	return h.Store.Exec(ctx, s)
}

// TestRedecodeWithoutPayloads: an InfluxDB without raw uplinks, or
// without any in the range, gets an error saying why, and nothing runs.
func TestRedecodeWithoutPayloads(t *testing.T) {
	r := newRig(t, 1, "meter")
	run := r.runner(r.pipeline("meter", afterFix), nil)
	_, err := run.Run(context.Background(), Request{Since: t0, Until: t0.Add(time.Hour)}, nil)
	if !errors.Is(err, ErrNoPayloads) || !strings.Contains(err.Error(), "no uplink measurement with a payload field") {
		t.Fatalf("empty InfluxDB: %v", err)
	}
	r.live(r.pipeline("meter", beforeFix), r.readings(3))
	_, err = run.Run(context.Background(), Request{Since: t0.Add(-48 * time.Hour), Until: t0.Add(-24 * time.Hour)}, nil)
	if !errors.Is(err, ErrNoPayloads) || !strings.Contains(err.Error(), "check --since, --until") {
		t.Fatalf("nothing in range: %v", err)
	}
}

func TestRequestCheck(t *testing.T) {
	many := make([]devices.EUI, MaxDevices+1)
	for _, tc := range []struct {
		name string
		req  Request
		want string
	}{
		{"no since", Request{Until: t0}, "required"},
		{"empty range", Request{Since: t0, Until: t0}, "not before"},
		{"reversed", Request{Since: t0.Add(time.Hour), Until: t0}, "not before"},
		{"too many devices", Request{Since: t0, Until: t0.Add(time.Hour), Devices: many}, "at most"},
		{"two filters", Request{Since: t0, Until: t0.Add(time.Hour), Model: "a", Source: "b"}, "not several"},
		{"ok", Request{Since: t0, Until: t0.Add(time.Hour), Model: "a"}, ""},
	} {
		err := tc.req.Check()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestGroups(t *testing.T) {
	dc := func(ns ...int64) []deviceCount {
		out := make([]deviceCount, len(ns))
		for i, n := range ns {
			out[i] = deviceCount{devices.EUI{7: byte(i)}, n}
		}
		return out
	}
	sizes := func(gs [][]deviceCount) []int {
		var out []int
		for _, g := range gs {
			out = append(out, len(g))
		}
		return out
	}
	many := make([]int64, 1200)
	for i := range many {
		many[i] = 1
	}
	for _, tc := range []struct {
		name   string
		counts []deviceCount
		want   []int
	}{
		{"one group", dc(10, 20, 30), []int{3}},
		{"split at the chunk", dc(60, 50, 1, 99), []int{1, 2, 1}},
		{"a large device alone", dc(5, 250, 5), []int{1, 1, 1}},
		{"at most maxGroup devices", dc(many...), []int{500, 500, 200}},
		{"none", nil, nil},
	} {
		j := &job{r: &Runner{MaxChunk: 100}}
		if tc.name == "at most maxGroup devices" {
			j.r.MaxChunk = 10000
		}
		if got := sizes(j.groups(tc.counts)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: groups of %v, want %v", tc.name, got, tc.want)
		}
	}
}
