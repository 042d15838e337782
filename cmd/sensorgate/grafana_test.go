package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/internal/simulate"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// The Grafana files under deploy/grafana, as Grafana reads them.
const (
	grafanaDashboard   = "../../deploy/grafana/dashboards/sensorgate.json"
	grafanaDatasources = "../../deploy/grafana/provisioning/datasources/sensorgate.yaml"
	grafanaProviders   = "../../deploy/grafana/provisioning/dashboards/sensorgate.yaml"
)

type grafanaRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaTarget struct {
	RefID        string      `json:"refId"`
	Datasource   *grafanaRef `json:"datasource"`
	Query        string      `json:"query"`
	RawQuery     bool        `json:"rawQuery"`
	ResultFormat string      `json:"resultFormat"`
	Expr         string      `json:"expr"`
}

type grafanaPanel struct {
	ID         int                      `json:"id"`
	Type       string                   `json:"type"`
	Title      string                   `json:"title"`
	Datasource *grafanaRef              `json:"datasource"`
	GridPos    struct{ H, W, X, Y int } `json:"gridPos"`
	Targets    []grafanaTarget          `json:"targets"`
	Panels     []grafanaPanel           `json:"panels"`
}

type grafanaVar struct {
	Name       string      `json:"name"`
	Type       string      `json:"type"`
	Datasource *grafanaRef `json:"datasource"`
	Query      string      `json:"query"`
	IncludeAll bool        `json:"includeAll"`
	AllValue   string      `json:"allValue"`
	Current    struct {
		Value any `json:"value"`
	} `json:"current"`
}

type grafanaDash struct {
	UID        string         `json:"uid"`
	Title      string         `json:"title"`
	Panels     []grafanaPanel `json:"panels"`
	Templating struct {
		List []grafanaVar `json:"list"`
	} `json:"templating"`
}

// loadGrafana reads the dashboard and the provisioned datasources (uid to
// type) and checks the dashboards provider.
func loadGrafana(t *testing.T) (grafanaDash, map[string]string) {
	t.Helper()
	var dash grafanaDash
	b, err := os.ReadFile(grafanaDashboard)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&dash); err != nil {
		t.Fatalf("%s: %v", grafanaDashboard, err)
	}
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, UID, Type, URL string
			JSONData             map[string]any `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	readYAML(t, grafanaDatasources, &ds)
	types := map[string]string{}
	for _, d := range ds.Datasources {
		if d.UID == "" || d.Type == "" || d.URL == "" || d.Name == "" {
			t.Errorf("%s: datasource %+v lacks name, uid, type or url", grafanaDatasources, d)
		}
		if d.Type == "influxdb" && d.JSONData["dbName"] != "sensors" {
			t.Errorf("%s: InfluxDB datasource %s has dbName %v, want sensors (the database sensorgate writes)", grafanaDatasources, d.UID, d.JSONData["dbName"])
		}
		types[d.UID] = d.Type
	}
	if ds.APIVersion != 1 || types["sensorgate-influxdb"] != "influxdb" {
		t.Fatalf("%s: want apiVersion 1 and an influxdb datasource with uid sensorgate-influxdb, got %+v", grafanaDatasources, ds)
	}
	var pv struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name, Type string
			Options    struct{ Path string }
		} `yaml:"providers"`
	}
	readYAML(t, grafanaProviders, &pv)
	if pv.APIVersion != 1 || len(pv.Providers) != 1 || pv.Providers[0].Type != "file" || !filepath.IsAbs(pv.Providers[0].Options.Path) {
		t.Fatalf("%s: want apiVersion 1 and one file provider with an absolute path, got %+v", grafanaProviders, pv)
	}
	return dash, types
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(false)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// allPanels flattens rows.
func allPanels(ps []grafanaPanel) []grafanaPanel {
	var out []grafanaPanel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// Grafana's macros the dashboard uses; $tag_NAME appears in aliases only.
var grafanaMacro = regexp.MustCompile(`\$(timeFilter|__interval|__rate_interval)\b`)

var fromMeasurement = regexp.MustCompile(`FROM "([^"]+)"`)

// TestGrafanaDashboardStructure checks what Grafana needs to load the
// dashboard and what it shows: panels on the grid, every datasource a
// provisioned one, every variable a query variable of the InfluxDB
// datasource, every query's measurement one sensorgate writes, and the
// measurement variable's filter covering the whole catalogue.
func TestGrafanaDashboardStructure(t *testing.T) {
	dash, types := loadGrafana(t)
	if dash.UID == "" || dash.Title == "" {
		t.Errorf("dashboard without uid or title")
	}
	vars := map[string]grafanaVar{}
	for _, v := range dash.Templating.List {
		vars[v.Name] = v
		if v.Type != "query" || v.Datasource == nil || types[v.Datasource.UID] != "influxdb" || v.Query == "" {
			t.Errorf("variable %s: want a query variable on the provisioned InfluxDB, got %+v", v.Name, v)
		}
	}
	for _, name := range []string{"district", "measurement", "field"} {
		if _, ok := vars[name]; !ok {
			t.Errorf("no template variable %s", name)
		}
	}
	if d := vars["district"]; !d.IncludeAll || d.AllValue != ".*" {
		t.Errorf("district: want All as the regex .* (queries match /^$district$/), got %+v", d)
	}
	// Every catalogue measurement is offered.
	for _, q := range decoders.Catalogue() {
		m := q.Measurement
		if !strings.Contains(vars["measurement"].Query, "|"+m+"|") && !strings.Contains(vars["measurement"].Query, "("+m+"|") &&
			!strings.Contains(vars["measurement"].Query, "|"+m+")") {
			t.Errorf("measurement variable %q does not offer catalogue measurement %s", vars["measurement"].Query, m)
		}
	}
	written := map[string]bool{"uplink": true, "uplink_gateway": true, "device_health": true, "$measurement": true}
	for _, q := range decoders.Catalogue() {
		written[q.Measurement] = true
	}

	ids := map[int]bool{}
	var queries, rows int
	for _, p := range allPanels(dash.Panels) {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W < 1 || g.H < 1 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside Grafana's 24 columns", p.Title, g)
		}
		if p.Type == "row" {
			rows++
			continue
		}
		if p.Datasource == nil || types[p.Datasource.UID] != p.Datasource.Type {
			t.Errorf("panel %q: datasource %+v is not a provisioned one (%v)", p.Title, p.Datasource, types)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: refId %q empty or twice", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			if tg.Datasource == nil || types[tg.Datasource.UID] != tg.Datasource.Type {
				t.Errorf("panel %q %s: datasource %+v is not a provisioned one", p.Title, tg.RefID, tg.Datasource)
				continue
			}
			queries++
			q := tg.Query
			if tg.Datasource.Type == "prometheus" {
				q = tg.Expr
			} else if !tg.RawQuery || (tg.ResultFormat != "time_series" && tg.ResultFormat != "table") {
				t.Errorf("panel %q %s: want a raw InfluxQL query as time_series or table", p.Title, tg.RefID)
			}
			if q == "" {
				t.Errorf("panel %q %s: empty query", p.Title, tg.RefID)
			}
			for _, m := range regexp.MustCompile(`\$(\w+)`).FindAllStringSubmatch(grafanaMacro.ReplaceAllString(q, ""), -1) {
				if _, ok := vars[m[1]]; !ok {
					t.Errorf("panel %q %s: $%s is neither a variable nor a macro", p.Title, tg.RefID, m[1])
				}
			}
			for _, m := range fromMeasurement.FindAllStringSubmatch(q, -1) {
				if !written[m[1]] {
					t.Errorf("panel %q %s: measurement %q is not one sensorgate writes", p.Title, tg.RefID, m[1])
				}
			}
		}
	}
	if rows < 3 || queries < 10 {
		t.Errorf("%d rows, %d queries: the dashboard lost its panels", rows, queries)
	}
}

// TestGrafanaQueriesReturnRows fills a real InfluxDB through a real daemon
// (a ChirpStack v4 feed whose codec output carries battery readings, one
// malformed message, and raw frames from two simulated gateways), then
// runs every variable and panel query of the dashboard as Grafana would,
// its macros and variables replaced by concrete values, for all districts
// and for one: each must return rows. The Prometheus panels' metrics must
// be among those the daemon serves on /metrics.
func TestGrafanaQueriesReturnRows(t *testing.T) {
	dash, _ := loadGrafana(t)
	mq := testserver.StartMosquitto(t)
	db := testserver.StartInfluxDB(t)
	dir := t.TempDir()
	port, udpPort := testserver.FreePort(t), testserver.FreePort(t)
	start := time.Now().UTC().Truncate(time.Second).Add(-30 * time.Minute)

	// Devices: the raw-frame fleet with its sessions, and the ChirpStack
	// fleet without a model, so the source's map reads its codec output.
	udp, err := simulate.NewSemtechFleet(simulate.SemtechOptions{Devices: 4, Gateways: 2, Seed: 21, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := simulate.NewFleet(simulate.Options{Format: simulate.ChirpStackV4, Devices: 5, Seed: 22, Start: start})
	var devs bytes.Buffer
	if err := udp.WriteDevicesCSV(&devs); err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(&devs)
	for _, d := range cs.Devices() {
		_ = w.Write([]string{d.EUI.String(), d.Name, "", d.Tags["district"], d.Tags["site"], "", "", "", "", "", "", ""})
	}
	w.Flush()
	if err := os.WriteFile(filepath.Join(dir, "devices.csv"), devs.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgText := fmt.Sprintf(`
log: {level: warn, format: json}
http: {listen: "127.0.0.1:%[4]d", token: "t0ken"}
state_dir: %[1]s/state
sources:
  - name: cs4
    type: mqtt
    format: chirpstack-v4
    broker: %[2]q
    topics: ["application/+/device/+/event/up"]
    client_id: grafana-cs4
    map:
      - {key: temperature, quantity: air.temperature}
      - {key: battery, quantity: battery}
      - {key: battery_level, quantity: batteryLevel}
  - {name: gateways, type: semtech-udp, listen: "127.0.0.1:%[5]d", dedup_window: 50ms}
influx: {url: %[3]q, bucket: sensors/autogen, flush_interval: 20ms}
devices: {import: %[1]s/devices.csv, tags: [district, site], health_interval: 300ms}
`, dir, mq.URL(), db.URL(), port, udpPort)
	cfgPath := filepath.Join(dir, "sensorgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	startDaemon(t, cfg, zerolog.WarnLevel)
	api := opsAPI{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port), token: "t0ken"}
	api.waitReady()

	var msgs []simulate.Message
	for i := 0; i < 30; i++ {
		m := cs.Next()
		var ev map[string]any
		if err := json.Unmarshal(m.Payload, &ev); err != nil {
			t.Fatal(err)
		}
		ev["object"] = map[string]any{"temperature": m.Temperature, "battery": 3.0 + float64(i%6)/10, "battery_level": 50 + i}
		m.Payload, _ = json.Marshal(ev)
		msgs = append(msgs, m)
	}
	// A message no parser takes: a dead letter.
	msgs = append(msgs, simulate.Message{Topic: msgs[0].Topic, Payload: []byte(`{"deviceInfo": `)})
	publishAll(t, mq.URL(), msgs)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := simulate.SendSemtech(ctx, udp, simulate.SemtechSendOptions{Addr: fmt.Sprintf("127.0.0.1:%d", udpPort), Count: 20}); err != nil {
		t.Fatal(err)
	}
	api.waitFor("uplinks of both sources, gateways and device health with batteries in InfluxDB", func() bool {
		return db.Count(t, "uplink") == 50 && db.Count(t, "uplink_gateway") >= 20 &&
			len(db.Query(t, `SELECT last("battery"), last("battery_level") FROM "device_health"`)) > 0 &&
			len(db.Query(t, `SELECT "uplinks_24h" FROM "device_health" WHERE "source" = 'gateways'`)) > 0
	})

	vars := map[string]grafanaVar{}
	for _, v := range dash.Templating.List {
		vars[v.Name] = v
	}
	// Variables, as Grafana fills its drop-downs (the value column of SHOW
	// TAG VALUES, else the first): the current choice must be among the
	// values each query returns.
	firstColumn := func(q string) []string {
		var out []string
		for _, s := range db.Query(t, q) {
			col := max(slices.Index(s.Columns, "value"), 0)
			for _, row := range s.Values {
				out = append(out, fmt.Sprint(row[col]))
			}
		}
		return out
	}
	districts := firstColumn(vars["district"].Query)
	if len(districts) == 0 {
		t.Fatalf("variable district (%s) returns no values", vars["district"].Query)
	}
	measurement := fmt.Sprint(vars["measurement"].Current.Value)
	if got := firstColumn(vars["measurement"].Query); !slices.Contains(got, measurement) {
		t.Fatalf("variable measurement (%s) returns %q, not its default %q", vars["measurement"].Query, got, measurement)
	}
	field := fmt.Sprint(vars["field"].Current.Value)
	fieldQuery := strings.ReplaceAll(vars["field"].Query, "$measurement", measurement)
	if got := firstColumn(fieldQuery); !slices.Contains(got, field) {
		t.Fatalf("variable field (%s) returns %q, not its default %q", fieldQuery, got, field)
	}

	now := time.Now()
	timeFilter := fmt.Sprintf("time >= %dms and time <= %dms", now.Add(-24*time.Hour).UnixMilli(), now.UnixMilli())
	var metricNames []string
	// Grafana puts the All value into a regex as it is, a chosen value
	// escaped.
	for _, district := range []string{vars["district"].AllValue, regexp.QuoteMeta(districts[0])} {
		repl := strings.NewReplacer("$timeFilter", timeFilter, "$__interval", "1m", "$district", district,
			"$measurement", measurement, "$field", field)
		for _, p := range allPanels(dash.Panels) {
			for _, tg := range p.Targets {
				if tg.Datasource == nil || tg.Datasource.Type != "influxdb" {
					if tg.Datasource != nil && tg.Datasource.Type == "prometheus" {
						metricNames = append(metricNames, regexp.MustCompile(`sensorgate_\w+`).FindAllString(tg.Expr, -1)...)
					}
					continue
				}
				q := repl.Replace(tg.Query)
				if regexp.MustCompile(`\$\w`).MatchString(q) {
					t.Errorf("panel %q %s: unreplaced variable in %s", p.Title, tg.RefID, q)
					continue
				}
				n := 0
				for _, s := range db.Query(t, q) {
					n += len(s.Values)
				}
				if n == 0 {
					t.Errorf("panel %q %s (district %s): no rows from %s", p.Title, tg.RefID, district, q)
				}
			}
		}
	}

	resp, err := http.Get(api.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if len(metricNames) == 0 {
		t.Fatal("no Prometheus panel queries sensorgate's metrics")
	}
	for _, name := range metricNames {
		if !bytes.Contains(body, []byte("\n# TYPE "+name+" ")) {
			t.Errorf("Prometheus panel metric %s is not served on /metrics", name)
		}
	}
	// The dead letter of the malformed message is what the panel shows.
	if !regexp.MustCompile(`(?m)^sensorgate_dead_letters_total\{[^}]*\} [1-9]`).Match(body) {
		t.Errorf("no dead letter counted on /metrics after a malformed message:\n%s", grepLines(body, "sensorgate_dead_letters_total"))
	}
}

func grepLines(b []byte, s string) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
