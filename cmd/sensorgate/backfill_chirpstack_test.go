package main

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/deadletter"
	"github.com/sensorgate/sensorgate/internal/simulate"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// csBackfillRig is a ChirpStack v4 feed's world: a broker, an InfluxDB,
// devices, and ChirpStack's PostgreSQL integration database.
type csBackfillRig struct {
	t    testing.TB
	dir  string
	mq   *testserver.Mosquitto
	db   *testserver.InfluxDB // its server holds every database of the test
	pg   string               // DSN of the integration database
	msgs []simulate.Message   // ChirpStack v4 uplink events, as published
}

func newCSBackfillRig(t *testing.T, n int) *csBackfillRig { return newCSBackfillRigTB(t, n) }

// newCSBackfillRigTB starts the servers and stores n simulated uplinks
// and three of the corpus' real events in event_up.
func newCSBackfillRigTB(t testing.TB, n int) *csBackfillRig {
	r := &csBackfillRig{t: t, dir: t.TempDir(), mq: testserver.StartMosquitto(t), db: testserver.StartInfluxDB(t),
		pg: testserver.ChirpStackIntegrationDB(t)}
	fleet, err := simulate.NewFleet(simulate.Options{Format: simulate.ChirpStackV4, Devices: 6, Seed: 20, Start: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	devs := fleet.Devices()
	// The field-realistic sample's device, registered with a model its
	// payload is not: a decode_error dead letter either way.
	eui, err := devices.ParseEUI("1000000000000001")
	if err != nil {
		t.Fatal(err)
	}
	devs = append(devs, devices.Device{EUI: eui, Name: "agrosense-1", Model: "cayenne-lpp"})
	writeYAML(t, filepath.Join(r.dir, "devices.yaml"), map[string]any{"devices": devs})
	for range n {
		r.msgs = append(r.msgs, fleet.Next())
	}
	// The corpus' real events: several gateways, a codec's object from
	// ChirpStack (an unregistered device: its points come from the
	// object), a Cayenne LPP time, nanosecond event times.
	for _, name := range []string{"field-realistic", "multi-gateway-object-upper", "cayenne-unix-time"} {
		body := mustRead(t, filepath.Join("../../testdata/feeds/chirpstack-v4", name+".json"))
		topic := mustRead(t, filepath.Join("../../testdata/feeds/chirpstack-v4", name+".topic"))
		r.msgs = append(r.msgs, simulate.Message{Topic: strings.TrimSpace(topic), Payload: []byte(body)})
	}
	var events [][]byte
	for _, m := range r.msgs {
		events = append(events, m.Payload)
	}
	testserver.InsertChirpStackUplinks(t, r.pg, events...)
	return r
}

// config writes a config whose InfluxDB database is db and state_dir is
// its own, and returns its path.
func (r *csBackfillRig) config(name, db string) string {
	r.t.Helper()
	return r.configWith(name, db, "")
}

// configWith is config with more keys on the source (", key: value").
func (r *csBackfillRig) configWith(name, db, sourceKeys string) string {
	r.t.Helper()
	dir := filepath.Join(r.dir, name)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		r.t.Fatal(err)
	}
	text := fmt.Sprintf(`log: {level: warn}
state_dir: %[1]s/state
http: {listen: "127.0.0.1:%[5]d"}
sources:
  - {name: cs4, type: mqtt, format: chirpstack-v4, broker: %[2]q, topics: ["application/+/device/+/event/up"], client_id: bf-%[6]s%[8]s}
influx: {url: %[3]q, bucket: %[4]q, flush_interval: 20ms}
devices: {import: %[7]s/devices.yaml, tags: [district, site]}
`, dir, r.mq.URL(), r.db.URL(), db+"/autogen", testserver.FreePort(r.t), name, r.dir, sourceKeys)
	path := filepath.Join(dir, "sensorgate.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		r.t.Fatal(err)
	}
	return path
}

// live runs a daemon on config path until it has taken msgs off the
// broker (uplinks written or dead-lettered) and delivered them, then
// stops it.
func (r *csBackfillRig) live(t *testing.T, path string, msgs []simulate.Message, deadLetters int) {
	t.Helper()
	cfg := loadConfigText(t, filepath.Dir(path), mustRead(t, path))
	d, err := NewDaemon(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	waitFor(t, 30*time.Second, "the daemon subscribed", func() bool {
		src, ok := d.sources[0].(interface{ Ready() bool })
		return ok && src.Ready()
	}, func() string { return "" })
	publishAll(t, r.mq.URL(), msgs)
	want := uint64(len(msgs) - deadLetters)
	waitFor(t, 60*time.Second, "the live uplinks written and delivered", func() bool {
		return d.Counters.Get("uplinks_written") == want && d.spool.Stats().Pending == 0
	}, func() string { return fmt.Sprintf("written %d of %d", d.Counters.Get("uplinks_written"), want) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	d.Close()
}

// backfill runs `sensorgate backfill` and returns its output; it fails
// the test unless the exit code is want.
func (r *csBackfillRig) backfill(want int, args ...string) (stdout, stderr string) {
	r.t.Helper()
	var out, errb bytes.Buffer
	if code := Main(context.Background(), append([]string{"backfill"}, args...), &out, &errb); code != want {
		r.t.Fatalf("backfill %v: exit %d, want %d\n%s\n%s", args, code, want, out.String(), errb.String())
	}
	return out.String(), errb.String()
}

// dump is every point of an InfluxDB database as sorted lines:
// measurement, tags, fields with their JSON values (an integer field
// reads without a decimal point), nanosecond time. The schema points a
// daemon writes as it starts (gateway.SchemaMeasurement) are left out:
// they mark a process, not an uplink.
func dump(t *testing.T, db *testserver.InfluxDB) []string {
	t.Helper()
	var lines []string
	for _, s := range db.Query(t, "SHOW MEASUREMENTS") {
		for _, v := range s.Values {
			m := fmt.Sprint(v[0])
			if m == gateway.SchemaMeasurement {
				continue
			}
			for _, series := range db.Query(t, "SELECT * FROM "+testserver.QuoteIdent(m)+" GROUP BY *") {
				var tags []string
				for k, v := range series.Tags {
					if v != "" {
						tags = append(tags, k+"="+v)
					}
				}
				sort.Strings(tags)
				for _, vals := range series.Values {
					var fields []string
					var ts string
					for i, c := range series.Columns {
						switch {
						case c == "time":
							ts = fmt.Sprint(vals[i])
						case vals[i] != nil:
							fields = append(fields, fmt.Sprintf("%s=%#v", c, vals[i]))
						}
					}
					sort.Strings(fields)
					lines = append(lines, m+","+strings.Join(tags, ",")+" "+strings.Join(fields, ",")+" "+ts)
				}
			}
		}
	}
	sort.Strings(lines)
	return lines
}

func diffLines(a, b []string) string {
	var out []string
	for _, l := range a {
		if !slices.Contains(b, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range b {
		if !slices.Contains(a, l) {
			out = append(out, "+ "+l)
		}
	}
	if len(out) > 20 {
		out = append(out[:20], fmt.Sprintf("… %d more", len(out)-20))
	}
	return strings.Join(out, "\n")
}

// TestChirpStackBackfillGolden: the same uplinks received live from
// ChirpStack's MQTT integration and read back from its PostgreSQL
// integration's event_up table give the same points in InfluxDB, every
// measurement, tag, field and timestamp. Backfilling again doubles
// nothing, nor does backfilling over uplinks received live, and a
// backfill over a gap leaves the database as if nothing had been missed.
func TestChirpStackBackfillGolden(t *testing.T) {
	const n = 60
	r := newCSBackfillRig(t, n)
	since := "--since=2000-01-01T00:00:00Z"

	gap := testserver.UseInfluxDB(t, r.db.URL(), "gap")
	gapCfg := r.config("gap", "gap")
	r.live(t, gapCfg, r.msgs[:n/2], 0) // the second half never arrives

	liveCfg := r.config("live", r.db.DB)
	r.live(t, liveCfg, r.msgs, 1)
	live := dump(t, r.db)

	bf := testserver.UseInfluxDB(t, r.db.URL(), "backfill")
	bfCfg := r.config("backfill", "backfill")
	out, _ := r.backfill(0, "-c", bfCfg, "--chirpstack-pg", r.pg, since)
	wantOut := fmt.Sprintf("backfill: %d rows of event_up: %d uplinks written, 1 dead letters (decode_error 1), 0 skipped", len(r.msgs), len(r.msgs)-1)
	if !strings.HasPrefix(out, wantOut) {
		t.Fatalf("backfill said %q, want %q", out, wantOut)
	}
	got := dump(t, bf)
	if d := diffLines(live, got); d != "" {
		t.Fatalf("points from event_up differ from the live feed's (- live, + backfill):\n%s", d)
	}
	measurements := map[string]int{}
	decoded := 0 // decoded_<model> points: since schema 2 only values no quantity holds
	for _, l := range got {
		m := l[:strings.IndexAny(l, ", ")]
		measurements[m]++
		if strings.HasPrefix(m, "decoded_") {
			decoded++
		}
	}
	if measurements["uplink"] != len(r.msgs)-1 || decoded == 0 || measurements["air"] == 0 ||
		measurements["uplink_gateway"] <= measurements["uplink"] {
		t.Fatalf("the golden comparison is too thin: points per measurement %v", measurements)
	}

	r.backfill(0, "-c", bfCfg, "--chirpstack-pg", r.pg, since)
	if d := diffLines(got, dump(t, bf)); d != "" {
		t.Fatalf("a second backfill changed the points:\n%s", d)
	}
	r.backfill(0, "-c", r.config("over-live", r.db.DB), "--chirpstack-pg", r.pg, since)
	if d := diffLines(live, dump(t, r.db)); d != "" {
		t.Fatalf("a backfill over uplinks received live changed the points:\n%s", d)
	}
	r.backfill(0, "-c", gapCfg, "--chirpstack-pg", r.pg, since)
	if d := diffLines(live, dump(t, gap)); d != "" {
		t.Fatalf("after a backfill over the gap, the points differ from a feed that missed nothing:\n%s", d)
	}
}

func mustRead(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestChirpStackBackfillHostileRows: rows no ChirpStack writes, in an
// event_up whose constraints and JSON types were loosened by hand, each
// become a dead letter with its reason or are skipped and counted; the
// good rows around them are written, and nothing crashes.
func TestChirpStackBackfillHostileRows(t *testing.T) {
	const n = 10
	r := newCSBackfillRig(t, n)
	var stmts []string
	for _, c := range []string{"dev_eui", "data", "object", "rx_info", "device_name"} {
		stmts = append(stmts, "ALTER TABLE event_up ALTER COLUMN "+c+" DROP NOT NULL")
	}
	stmts = append(stmts, "ALTER TABLE event_up ALTER COLUMN object TYPE text", "ALTER TABLE event_up ALTER COLUMN rx_info TYPE text")
	// Copies of a good row (the first simulated uplink), each made hostile.
	good := testserver.ChirpStackEventTime(t, r.msgs[0].Payload)
	copyRow := `INSERT INTO event_up SELECT '%s'::uuid, time + interval '%d millisecond', tenant_id, tenant_name, application_id,
		application_name, device_profile_id, device_profile_name, device_name, %s, tags, dev_addr, adr, dr, f_cnt + %[2]d, f_port,
		confirmed, data, object, rx_info, tx_info FROM event_up WHERE time = '%[4]s'`
	hostile := []struct{ id, devEUI, set string }{
		{"20000000-0000-4000-8000-000000000001", "dev_eui", "dev_eui = NULL"},
		{"20000000-0000-4000-8000-000000000002", "dev_eui", `object = '{"temperature": 21.5,'`},
		{"20000000-0000-4000-8000-000000000003", "dev_eui", `rx_info = '[{"gatewayId": "0016c001f153a14c", "rssi": -3'`},
		{"20000000-0000-4000-8000-000000000004", "dev_eui", "data = decode(repeat('ab', 1100000), 'hex')"},
		{"20000000-0000-4000-8000-000000000005", "'0badc0de0badc0de'", "data = data"},                    // not in the registry, and the source rejects unknowns
		{"20000000-0000-4000-8000-000000000006", "dev_eui", `rx_info = '{"gatewayId": "not an array"}'`}, // JSON, not ChirpStack's
		{"20000000-0000-4000-8000-000000000007", "dev_eui", "data = NULL"},
	}
	for i, h := range hostile {
		stmts = append(stmts, fmt.Sprintf(copyRow, h.id, i+1, h.devEUI, good.UTC().Format(time.RFC3339Nano)),
			fmt.Sprintf("UPDATE event_up SET %s WHERE deduplication_id = '%s'", h.set, h.id))
	}
	testserver.PostgresExec(t, r.pg, strings.Join(stmts, ";\n"))

	cfg := r.configWith("hostile", r.db.DB, ", unknown_devices: reject")
	out, errOut := r.backfill(0, "-c", cfg, "--chirpstack-pg", r.pg, "--since", "2000-01-01T00:00:00Z")
	total := len(r.msgs) + len(hostile)
	// The two unregistered devices of the corpus' events are refused as
	// well, with unknown_devices: reject, as they would be live.
	written := len(r.msgs) - 3
	want := fmt.Sprintf("backfill: %d rows of event_up: %d uplinks written, 9 dead letters (decode_error 1, malformed 5, unknown_device 3), 1 skipped", total, written)
	if !strings.HasPrefix(out, want) {
		t.Fatalf("backfill said %q, want %q\n%s", out, want, errOut)
	}
	if !strings.Contains(errOut, "20000000-0000-4000-8000-000000000004") || !strings.Contains(errOut, "over the bound") {
		t.Errorf("the skipped row is not named: %s", errOut)
	}
	if got := r.db.Count(t, "uplink"); got != written {
		t.Errorf("InfluxDB holds %d uplinks, want %d", got, written)
	}
	store, err := deadletter.Open(filepath.Join(r.dir, "hostile", "state", deadletter.FileName), deadletter.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	letters, err := store.List(context.Background(), deadletter.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, l := range letters {
		got[string(l.Reason)+" "+l.DevEUI] = l.Detail
	}
	dev := r.msgs[0].DevEUI.String()
	for _, k := range []string{"malformed ", "malformed " + dev, "unknown_device 0badc0de0badc0de"} {
		if _, ok := got[k]; !ok {
			t.Errorf("no dead letter %q among %v", k, got)
		}
	}
	if d := got["malformed "]; !strings.Contains(d, "column dev_eui is NULL") {
		t.Errorf("the NULL dev_eui letter says %q", d)
	}
}

// TestChirpStackBackfillPostgresDies: PostgreSQL ends the backfill's
// connection mid-stream: the command fails saying so and where to start
// again, and the same command run again completes, every uplink in
// InfluxDB once.
func TestChirpStackBackfillPostgresDies(t *testing.T) {
	const n = 1500
	r := newCSBackfillRig(t, n)
	u, err := url.Parse(r.pg)
	if err != nil {
		t.Fatal(err)
	}
	db := strings.TrimPrefix(u.Path, "/")
	backfillRowHook = func(rows int64) {
		if rows == 400 {
			testserver.PostgresAdminExec(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'sensorgate-backfill' AND datname = '"+db+"'")
		}
	}
	t.Cleanup(func() { backfillRowHook = nil })
	t.Setenv("SG_TEST_CHIRPSTACK_DSN", r.pg)
	cfg := r.config("dies", r.db.DB)
	args := []string{"-c", cfg, "--chirpstack-pg", "env:SG_TEST_CHIRPSTACK_DSN", "--since", "2000-01-01T00:00:00Z"}
	_, errOut := r.backfill(1, args...)
	if !strings.Contains(errOut, "lost the connection to ChirpStack's PostgreSQL") || !strings.Contains(errOut, "run the backfill again, --since 2026-") {
		t.Fatalf("the error does not say the connection was lost and where to go on:\n%s", errOut)
	}
	t.Logf("the interrupted backfill said:\n%s", errOut)
	backfillRowHook = nil
	out, _ := r.backfill(0, args...)
	if !strings.HasPrefix(out, fmt.Sprintf("backfill: %d rows of event_up: %d uplinks written", len(r.msgs), len(r.msgs)-1)) {
		t.Fatalf("the re-run said %q", out)
	}
	if got := r.db.Count(t, "uplink"); got != len(r.msgs)-1 {
		t.Fatalf("InfluxDB holds %d uplinks after the re-run, want %d", got, len(r.msgs)-1)
	}
}

// TestChirpStackBackfillRefuses: what the command refuses, with what it
// says, and never the DSN's password.
func TestChirpStackBackfillRefuses(t *testing.T) {
	const secret = "Pg-s3cret-42"
	dir := t.TempDir()
	empty := testserver.PostgresDB(t)
	withPassword := strings.Replace(empty, "postgres@", "postgres:"+secret+"@", 1)
	cfgText := `state_dir: %s/state
sources:
  - {name: %s, type: mqtt, format: %s, broker: "tcp://127.0.0.1:1", topics: ["x/#"]}
influx: {url: "http://127.0.0.1:1", bucket: sensors/autogen}
`
	write := func(name, source, format string) string {
		p := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(p, []byte(fmt.Sprintf(cfgText, dir, source, format)), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cs := write("cs", "cs4", "chirpstack-v4")
	tts := write("tts", "tts", "tts-v3")
	t.Setenv("SG_TEST_EMPTY_DSN", "")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no table", []string{"-c", cs, "--chirpstack-pg", withPassword, "--since", "24h"}, 1, "is this ChirpStack's PostgreSQL integration database?"},
		{"password on the command line", []string{"-c", cs, "--chirpstack-pg", withPassword, "--since", "24h"}, 1, "the DSN's password is visible in the process list"},
		{"bad DSN", []string{"-c", cs, "--chirpstack-pg", "postgres://u:" + secret + "@h:port/db", "--since", "24h"}, 1, "does not parse"},
		{"empty env", []string{"-c", cs, "--chirpstack-pg", "env:SG_TEST_EMPTY_DSN", "--since", "24h"}, 2, "SG_TEST_EMPTY_DSN is empty or unset"},
		{"no since", []string{"-c", cs, "--chirpstack-pg", withPassword}, 2, "give --since"},
		{"until before since", []string{"-c", cs, "--chirpstack-pg", withPassword, "--since", "1h", "--until", "2h"}, 2, "is not after --since"},
		{"application not a UUID", []string{"-c", cs, "--chirpstack-pg", withPassword, "--since", "24h", "--application", "weather"}, 2, "not a ChirpStack application id"},
		{"no mode", []string{"-c", cs, "--since", "24h"}, 2, "--chirpstack-pg DSN"},
		{"no chirpstack-v4 source", []string{"-c", tts, "--chirpstack-pg", withPassword, "--since", "24h"}, 1, "has no chirpstack-v4 source"},
		{"source of another format", []string{"-c", tts, "--chirpstack-pg", withPassword, "--since", "24h", "--source", "tts"}, 1, "has format tts-v3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(context.Background(), append([]string{"backfill"}, tt.args...), &out, &errb)
			all := out.String() + errb.String()
			if code != tt.code || !strings.Contains(all, tt.want) {
				t.Fatalf("exit %d, want %d saying %q:\n%s", code, tt.code, tt.want, all)
			}
			if strings.Contains(all, secret) {
				t.Fatalf("the output shows the password:\n%s", all)
			}
		})
	}
}

// TestChirpStackBackfillBesideTheDaemon: backfill on the running daemon's
// own state_dir is refused with what to do; with a copy of the config
// whose state_dir is another directory it writes into the same InfluxDB
// while the daemon runs, and the uplinks then received live too are one
// point each.
func TestChirpStackBackfillBesideTheDaemon(t *testing.T) {
	const n = 30
	r := newCSBackfillRig(t, n)
	liveCfg := r.config("live", r.db.DB)
	d := startDaemon(t, loadConfigText(t, filepath.Dir(liveCfg), mustRead(t, liveCfg)), zerolog.ErrorLevel)
	since := "--since=2000-01-01T00:00:00Z"
	_, errOut := r.backfill(1, "-c", liveCfg, "--chirpstack-pg", r.pg, since)
	if !strings.Contains(errOut, "in use by another sensorgate process") || !strings.Contains(errOut, "a copy of the config whose state_dir") {
		t.Fatalf("backfill on the daemon's state_dir said:\n%s", errOut)
	}
	r.backfill(0, "-c", r.config("beside", r.db.DB), "--chirpstack-pg", r.pg, since)
	backfilled := dump(t, r.db)
	if got := r.db.Count(t, "uplink"); got != len(r.msgs)-1 {
		t.Fatalf("InfluxDB holds %d uplinks after the backfill, want %d", got, len(r.msgs)-1)
	}
	waitFor(t, 30*time.Second, "the daemon subscribed", func() bool {
		src, ok := d.sources[0].(interface{ Ready() bool })
		return ok && src.Ready()
	}, func() string { return "" })
	publishAll(t, r.mq.URL(), r.msgs)
	waitFor(t, 60*time.Second, "the live uplinks written and delivered", func() bool {
		return d.Counters.Get("uplinks_written") == uint64(len(r.msgs)-1) && d.spool.Stats().Pending == 0
	}, func() string { return fmt.Sprint(d.Counters.Get("uplinks_written")) })
	if diff := diffLines(backfilled, dump(t, r.db)); diff != "" {
		t.Fatalf("the live uplinks changed what the backfill wrote:\n%s", diff)
	}
}
