package lorawan_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/influx"
	"github.com/sensorgate/sensorgate/gateway/lorawan"
	"github.com/sensorgate/sensorgate/gateway/spool"
	"github.com/sensorgate/sensorgate/internal/simulate"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

type deadLetters struct {
	mu  sync.Mutex
	dls []gateway.DeadLetter
}

func (d *deadLetters) Put(_ context.Context, dl gateway.DeadLetter) error {
	d.mu.Lock()
	d.dls = append(d.dls, dl)
	d.mu.Unlock()
	return nil
}

func (d *deadLetters) all() []gateway.DeadLetter {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]gateway.DeadLetter(nil), d.dls...)
}

// TestSemtechToInfluxDB: a simulated set of gateways sends encrypted
// frames of known ABP devices over loopback UDP to the Source; a real
// Pipeline and influx Sink write them to a real InfluxDB 1.8, and what
// InfluxDB returns is compared, value by value, with what was sent.
func TestSemtechToInfluxDB(t *testing.T) {
	db := testserver.StartInfluxDB(t)
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	fleet, err := simulate.NewSemtechFleet(simulate.SemtechOptions{Devices: 6, Gateways: 3, Seed: 21, Start: time.Date(2026, 4, 1, 6, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	devs := fleet.Devices()
	reg, err := devices.NewRegistry(devs)
	if err != nil {
		t.Fatal(err)
	}

	client, err := influx.New(influx.Config{URL: db.URL(), Bucket: db.Bucket(), FlushInterval: 10 * time.Millisecond}, log)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := spool.Open(spool.Config{Dir: t.TempDir()}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	dl := &deadLetters{}
	sink := influx.NewWriter(sp)
	delivery := influx.NewDeliverer(client, sp, dl, log)
	stopDelivery := delivery.Start()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if notDrained, err := stopDelivery(ctx); notDrained != nil || err != nil {
			t.Error(notDrained, err)
		}
	}()

	counters := &gateway.Counters{}
	p := &gateway.Pipeline{
		Devices: reg, Decoders: decoders.NewRegistry(), Sink: sink, DeadLetters: dl,
		Sources:     map[string]gateway.SourcePolicy{"gateways": {GatewayPoints: true}},
		AllowedTags: []string{"district"}, Log: log, Counters: counters,
	}
	src, err := lorawan.New(lorawan.Config{Name: "gateways", Listen: "127.0.0.1:0"}, reg, dl, counters, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- src.Run(ctx, p.Handle) }()
	defer func() {
		cancel()
		if err := <-runDone; err != nil {
			t.Error(err)
		}
	}()
	<-src.Ready()

	const n = 60
	var sent []simulate.SemtechMessage
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	if err := simulate.SendSemtech(sctx, fleet, simulate.SemtechSendOptions{Addr: src.Addr().String(), Count: n,
		OnSent: func(m simulate.SemtechMessage) { sent = append(sent, m) }}); err != nil {
		t.Fatal(err)
	}
	// A frame with a broken MIC: a dead letter, no point.
	bad := append([]byte(nil), sent[0].PHYPayload...)
	binary.BigEndian.PutUint32(bad[len(bad)-4:], 0xdeadbeef)
	sendRaw(t, src.Addr().String(), bad)

	waitFor(t, func() bool {
		return counters.Get("uplinks_written") == n && counters.Get("lorawan.bad_mic") == 1
	})
	if got := dl.all(); len(got) != 1 || got[0].Reason != gateway.ReasonBadMIC || got[0].Source != "gateways" {
		t.Fatalf("dead letters %+v", got)
	}
	dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
	defer dcancel()
	if err := delivery.Drain(dctx); err != nil {
		t.Fatal(err)
	}

	byName := map[devices.EUI]devices.Device{}
	for _, d := range devs {
		byName[d.EUI] = d
	}
	type row = map[string]any
	key := func(eui string, ns json.Number) string { return eui + "@" + ns.String() }
	rows := func(q string) map[string][]row {
		out := map[string][]row{}
		for _, s := range db.Query(t, q) {
			for _, v := range s.Values {
				r := row{}
				for i, c := range s.Columns {
					r[c] = v[i]
				}
				k := key(r["dev_eui"].(string), r["time"].(json.Number))
				out[k] = append(out[k], r)
			}
		}
		return out
	}
	uplinks := rows(`SELECT * FROM "uplink"`)
	gws := rows(`SELECT * FROM "uplink_gateway"`)
	temps := rows(`SELECT "temperature", "dev_eui", "channel" FROM "air" WHERE "channel" = '1'`)
	if len(uplinks) != n || len(temps) != n {
		t.Fatalf("%d uplink and %d temperature points, want %d", len(uplinks), len(temps), n)
	}
	totalRx := 0
	for _, m := range sent {
		d := byName[m.DevEUI]
		// Points are at the uplink's time cut to the millisecond (schema 2).
		k := key(m.DevEUI.String(), json.Number(strconv.FormatInt(gateway.PointTime(m.Time).UnixNano(), 10)))
		us := uplinks[k]
		if len(us) != 1 {
			t.Fatalf("uplink %s: %d points", k, len(us))
		}
		u := us[0]
		payload := base64.StdEncoding.EncodeToString(lppWeather(m))
		want := row{
			"device": d.Name, "dev_eui": d.EUI.String(), "model": "cayenne-lpp", "source": "gateways", "district": d.Tags["district"],
			"f_cnt": json.Number(strconv.FormatUint(uint64(m.FCnt), 10)), "f_port": json.Number("2"),
			"frequency": json.Number(strconv.FormatUint(m.Frequency, 10)), "sf": json.Number(strconv.Itoa(m.SF)),
			"gateways": json.Number(strconv.Itoa(len(m.Rx))), "payload": payload,
		}
		for c, w := range want {
			if fmt.Sprint(u[c]) != fmt.Sprint(w) {
				t.Errorf("uplink %s: %s = %v, want %v", k, c, u[c], w)
			}
		}
		// Schema 2: every reception has its uplink_gateway point (checked
		// below), so the best one's rssi and snr are not repeated here.
		if u["rssi"] != nil || u["snr"] != nil {
			t.Errorf("uplink %s: rssi %v, snr %v; they belong to the best uplink_gateway point", k, u["rssi"], u["snr"])
		}
		if u["dr"] != nil {
			t.Errorf("uplink %s: dr %v, but a gateway feed cannot know the region's data-rate index", k, u["dr"])
		}
		if tv := temps[k][0]["temperature"]; fmt.Sprint(tv) != fmt.Sprint(num(m.Temperature)) {
			t.Errorf("temperature %s = %v, want %v", k, tv, m.Temperature)
		}
		g := gws[k]
		totalRx += len(m.Rx)
		if len(g) != len(m.Rx) {
			t.Fatalf("uplink_gateway %s: %d points, want %d", k, len(g), len(m.Rx))
		}
		sort.Slice(g, func(i, j int) bool { return g[i]["gateway_id"].(string) < g[j]["gateway_id"].(string) })
		rx := append([]simulate.SemtechRx(nil), m.Rx...)
		sort.Slice(rx, func(i, j int) bool { return rx[i].GatewayEUI.String() < rx[j].GatewayEUI.String() })
		for i := range rx {
			if g[i]["gateway_id"] != rx[i].GatewayEUI.String() || fmt.Sprint(g[i]["rssi"]) != fmt.Sprint(num(float64(rx[i].RSSI))) ||
				fmt.Sprint(g[i]["snr"]) != fmt.Sprint(num(rx[i].SNR)) || g[i]["device"] != d.Name || g[i]["source"] != "gateways" {
				t.Errorf("uplink_gateway %s: %v, want %+v", k, g[i], rx[i])
			}
		}
	}
	if got := db.Count(t, "uplink_gateway"); got != totalRx {
		t.Fatalf("%d uplink_gateway points, want %d", got, totalRx)
	}
}

// num is how InfluxDB's JSON (UseNumber) writes a float field value.
func num(f float64) json.Number { return json.Number(strconv.FormatFloat(f, 'f', -1, 64)) }

// lppWeather is the Cayenne LPP payload the simulator encodes.
func lppWeather(m simulate.SemtechMessage) []byte {
	b := []byte{1, 0x67, 0, 0, 2, 0x68, byte(m.Humidity * 2), 3, 0x73, 0, 0}
	binary.BigEndian.PutUint16(b[2:], uint16(int16(math.Round(m.Temperature*10))))
	binary.BigEndian.PutUint16(b[9:], uint16(math.Round(m.Pressure*10)))
	return b
}

func sendRaw(t *testing.T, addr string, phy []byte) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body, _ := json.Marshal(map[string]any{"rxpk": []map[string]any{{"stat": 1, "freq": 868.1, "datr": "SF7BW125", "rssi": -80, "lsnr": 3.0, "data": phy}}})
	pkt := append([]byte{2, 0xbe, 0xef, 0, 1, 2, 3, 4, 5, 6, 7, 8}, body...)
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(buf); err != nil || n != 4 || buf[3] != 0x01 {
		t.Fatalf("PUSH_ACK %x %v", buf[:n], err)
	}
}

// waitFor polls cond, state the code under test reaches on its own
// goroutines, for up to 20s.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
