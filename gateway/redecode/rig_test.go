package redecode

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/influx"
	"github.com/sensorgate/sensorgate/gateway/spool"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// The rig: a real InfluxDB 1.8, a real spool delivered to it by the
// daemon's Deliverer, and a pipeline whose decoder the test swaps for a
// "fixed" one, as an operator's codec fix or a registry fix does.

var t0 = time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC)

// Decoders of the fix scenario: the same model, "meter", before and
// after its codec was fixed. v1 has a scaling bug (/100 instead of /10),
// writes humidity under "humidity", a "legacy" field and
// air.lightIntensity; v2 divides by 10, renames humidity "rh", drops
// legacy and light, adds pressure, and refuses payloads shorter than 6
// bytes. "meter-old" is v1 under another model id (a device registered
// with the wrong model).
var (
	meterV1 = decoders.Mapped{
		DecodeRecord: func(in decoders.Input, r *decoders.Record) error {
			if len(in.Bytes) < 3 {
				return decoders.ErrTruncated
			}
			r.Number("temperature", float64(int16(binary.BigEndian.Uint16(in.Bytes)))/100)
			r.Number("humidity", float64(in.Bytes[2])/2)
			r.Number("legacy", 1)
			r.Number("light", 5)
			return nil
		},
		Map: []decoders.Mapping{{Key: "temperature", Quantity: "air.temperature"}, {Key: "humidity", Quantity: "air.relativeHumidity"}, {Key: "light", Quantity: "air.lightIntensity"}},
	}
	meterV2 = decoders.Mapped{
		DecodeRecord: func(in decoders.Input, r *decoders.Record) error {
			if len(in.Bytes) < 6 {
				return decoders.ErrTruncated
			}
			r.Number("temperature", float64(int16(binary.BigEndian.Uint16(in.Bytes)))/10)
			r.Number("rh", float64(in.Bytes[2])/2)
			r.Number("pressure", float64(binary.BigEndian.Uint16(in.Bytes[4:]))/10)
			return nil
		},
		Map: []decoders.Mapping{{Key: "temperature", Quantity: "air.temperature"}, {Key: "rh", Quantity: "air.relativeHumidity"}, {Key: "pressure", Quantity: "air.pressure"}},
	}
	beforeFix = decoderTable{"meter": meterV1, "meter-old": meterV1}
	afterFix  = decoderTable{"meter": meterV2, "meter-old": meterV1}
)

type decoderTable map[string]decoders.Decoder

func (t decoderTable) Lookup(m string) (decoders.Decoder, bool) { d, ok := t[m]; return d, ok }

// reading is one simulated uplink and what its payload encodes.
type reading struct {
	eui      devices.EUI
	t        time.Time
	temp     float64 // °C, 0.1 resolution
	hum      float64
	pressure float64
	payload  []byte
}

type rig struct {
	t      testing.TB
	db     *testserver.InfluxDB
	client *influx.Client
	sp     *spool.Spool
	writer *influx.Writer
	devs   []devices.Device
	// stop ends delivery (deferred by newRig's cleanup).
	stopDelivery func(context.Context) (error, error)
}

func newRig(t testing.TB, nDevices int, model string) *rig {
	t.Helper()
	r := &rig{t: t, db: testserver.StartInfluxDB(t)}
	var err error
	r.client, err = influx.New(influx.Config{URL: r.db.URL(), Bucket: r.db.Bucket(), FlushInterval: 10 * time.Millisecond}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if r.sp, err = spool.Open(spool.Config{Dir: t.TempDir()}, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	r.writer = influx.NewWriter(r.sp)
	r.stopDelivery = influx.NewDeliverer(r.client, r.sp, nopDeadLetters{}, zerolog.Nop()).Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r.stopDelivery(ctx)
		r.sp.Close()
	})
	for i := range nDevices {
		var e devices.EUI
		binary.BigEndian.PutUint64(e[:], 0x70b3d57ed0000000+uint64(i))
		r.devs = append(r.devs, devices.Device{EUI: e, Name: fmt.Sprintf("meter-%03d", i), Model: model, Tags: map[string]string{"district": "north"}})
	}
	return r
}

type nopDeadLetters struct{}

func (nopDeadLetters) Put(context.Context, gateway.DeadLetter) error { return nil }

// pipeline is the daemon's pipeline over the rig's registry (with each
// device's model set to model) and sink.
func (r *rig) pipeline(model string, decs decoderTable) *gateway.Pipeline {
	r.t.Helper()
	devs := slices.Clone(r.devs)
	for i := range devs {
		devs[i].Model = model
	}
	reg, err := devices.NewRegistry(devs)
	if err != nil {
		r.t.Fatal(err)
	}
	all := map[string]bool{}
	for m := range decs {
		all[m] = true
	}
	return &gateway.Pipeline{
		Devices: reg, Decoders: decs, Sink: r.writer, DeadLetters: nopDeadLetters{},
		Sources:     map[string]gateway.SourcePolicy{"cs": {GatewayPoints: true}},
		AllowedTags: []string{"district"}, Log: zerolog.Nop(),
		// decoders.decoded_all for every model: decoded_<model> keeps
		// the decoder's every value, not only those no quantity holds, so
		// the tests check that the decoder's own values are corrected too.
		DecodedAll: all,
	}
}

// readings returns n uplinks spread over the devices, one a minute from t0.
func (r *rig) readings(n int) []reading {
	out := make([]reading, n)
	for i := range out {
		temp := float64(int(i%400)-100) / 10 // -10.0 … 29.9
		hum := float64(20+i%120) / 2
		pres := float64(9500+i%1000) / 10
		p := make([]byte, 6)
		binary.BigEndian.PutUint16(p, uint16(int16(temp*10)))
		p[2] = byte(hum * 2)
		binary.BigEndian.PutUint16(p[4:], uint16(pres*10))
		out[i] = reading{eui: r.devs[i%len(r.devs)].EUI, t: t0.Add(time.Duration(i) * time.Minute).Add(123456 * time.Nanosecond), temp: temp, hum: hum, pressure: pres, payload: p}
	}
	return out
}

// live writes readings through p as the live pipeline does (one spool
// record per uplink) and waits until InfluxDB has them.
func (r *rig) live(p *gateway.Pipeline, rs []reading) {
	r.t.Helper()
	for _, rd := range rs {
		up := gateway.Uplink{Source: "cs", DevEUI: rd.eui, FPort: 2, HasFPort: true, FCnt: 1, HasFCnt: true, Payload: rd.payload, Time: rd.t,
			Radio: gateway.Radio{DR: 5, Frequency: 868100000, Gateways: []gateway.GatewayRx{{ID: "b827ebfffe000001", RSSI: -90, SNR: 5, HasSNR: true}}}}
		if err := p.Handle(context.Background(), up); err != nil {
			r.t.Fatal(err)
		}
	}
	r.settle()
}

// settle waits until the spool's records are in InfluxDB.
func (r *rig) settle() {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, a := r.sp.Positions()
		if a >= c {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("spool not delivered in 30s: committed %d, acked %d", c, a)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writeLines writes line protocol straight into InfluxDB (what another
// writer, or an older sensorgate, left there).
func (r *rig) writeLines(lines ...string) {
	r.t.Helper()
	resp, err := http.Post(r.db.URL()+"/write?db="+r.db.DB+"&precision=ns", "text/plain", strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		r.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		r.t.Fatalf("write: %s", resp.Status)
	}
}

// runner re-decodes with p over the rig's InfluxDB and spool.
func (r *rig) runner(p *gateway.Pipeline, store Store) *Runner {
	if store == nil {
		store = testStore{r.client}
	}
	return &Runner{Store: store, Pipeline: p, Sink: r.writer, Log: zerolog.Nop(), MaxChunk: 200, WriteBatch: 64,
		Barrier: func(ctx context.Context) error { r.settle(); return nil }}
}

// testStore is cmd/sensorgate's adapter of influx.Client.
type testStore struct{ c *influx.Client }

func (s testStore) Query(ctx context.Context, q string) ([]Series, error) {
	series, err := s.c.Query(ctx, q)
	out := make([]Series, len(series))
	for i, x := range series {
		out[i] = Series(x)
	}
	return out, err
}

func (s testStore) Exec(ctx context.Context, stmts string) error { return s.c.Exec(ctx, stmts) }

// faultStore runs hook before the n-th statement (queries and execs
// counted together), as a server that goes away mid-job.
type faultStore struct {
	Store
	n    int64
	hook func()
	seen atomic.Int64
}

func (f *faultStore) fire() {
	if f.seen.Add(1) == f.n && f.hook != nil {
		f.hook()
	}
}

func (f *faultStore) Query(ctx context.Context, q string) ([]Series, error) {
	f.fire()
	return f.Store.Query(ctx, q)
}

func (f *faultStore) Exec(ctx context.Context, stmts string) error {
	f.fire()
	return f.Store.Exec(ctx, stmts)
}

// snapshot is every point InfluxDB holds, one line per point (measurement,
// sorted tags, time, sorted fields), sorted: two snapshots are equal when
// the stores hold the same points.
func (r *rig) snapshot(measurements ...string) []string {
	r.t.Helper()
	if len(measurements) == 0 {
		for _, s := range r.db.Query(r.t, "SHOW MEASUREMENTS") {
			for _, v := range s.Values {
				measurements = append(measurements, v[0].(string))
			}
		}
	}
	var out []string
	for _, m := range measurements {
		for _, s := range r.db.Query(r.t, "SELECT * FROM "+testserver.QuoteIdent(m)+" GROUP BY *") {
			var tags []string
			for k, v := range s.Tags {
				if v != "" {
					tags = append(tags, k+"="+v)
				}
			}
			sort.Strings(tags)
			for _, row := range s.Values {
				var fields []string
				for i, c := range s.Columns[1:] {
					if row[i+1] != nil {
						fields = append(fields, fmt.Sprintf("%s=%v", c, row[i+1]))
					}
				}
				out = append(out, fmt.Sprintf("%s,%s %v %s", m, strings.Join(tags, ","), row[0], strings.Join(fields, ",")))
			}
		}
	}
	sort.Strings(out)
	return out
}

// column returns the values of one field of a measurement, keyed by
// dev_eui@time.
func (r *rig) column(measurement, field string) map[string]any {
	r.t.Helper()
	out := map[string]any{}
	for _, s := range r.db.Query(r.t, fmt.Sprintf(`SELECT %s FROM %s GROUP BY "dev_eui"`, testserver.QuoteIdent(field), testserver.QuoteIdent(measurement))) {
		for _, row := range s.Values {
			out[fmt.Sprintf("%s@%v", s.Tags["dev_eui"], row[0])] = row[1]
		}
	}
	return out
}

// keyOf names a reading's points: its device and its time as points
// carry it (gateway.PointTime).
func keyOf(rd reading) string {
	return fmt.Sprintf("%s@%d", rd.eui, gateway.PointTime(rd.t).UnixNano())
}

func diffLines(a, b []string) (onlyA, onlyB []string) {
	inB := map[string]int{}
	for _, x := range b {
		inB[x]++
	}
	for _, x := range a {
		if inB[x] > 0 {
			inB[x]--
		} else {
			onlyA = append(onlyA, x)
		}
	}
	for x, n := range inB {
		for range n {
			onlyB = append(onlyB, x)
		}
	}
	sort.Strings(onlyB)
	return onlyA[:min(len(onlyA), 5)], onlyB[:min(len(onlyB), 5)]
}
