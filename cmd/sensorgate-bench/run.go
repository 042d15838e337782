package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway/deadletter"
	"github.com/sensorgate/sensorgate/internal/simulate"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// Consumers and modes.
const (
	consumerSensorgate = "sensorgate"
	consumerNoop       = "no-op"
	consumerTelegraf   = "telegraf"
	// consumerBaseline is another build of sensorgate (-baseline), run
	// with the same configuration, so that a change is measured against
	// the build before it in interleaved rounds.
	consumerBaseline = "baseline"

	modeBacklog = "backlog"
	modeLive    = "live"

	registrySQLite   = "sqlite"
	registryPostgres = "postgres"
)

// settings are what every run of one invocation shares.
type settings struct {
	Mode       string
	Format     string
	N          int
	Devices    int
	Seed       uint64
	Sensorgate string        // the daemon binary
	Self       string        // this binary, re-executed as the no-op subscriber
	WorkDir    string        // runs' directories: broker, database and spool files
	Timeout    time.Duration // per run, publishing and draining
	Poll       time.Duration // how often InfluxDB is asked for its uplink count
	Keep       bool          // keep each run's directory (logs, data)
	InfluxURL  string        // an InfluxDB elsewhere instead of one per run here; "" for the latter
	Env        []string      // added to sensorgate's environment (KEY=VALUE), e.g. GOGC experiments
	Scripts    string        // decoders.scripts for sensorgate, absolute; "" for the built-in decoders
	Sandbox    string        // decoders.sandbox with Scripts; "" for sensorgate's default
	Registry   string        // registry.driver: sqlite (under state_dir) or postgres (a fresh database per run)
	CodecTime  time.Duration // decoders.timeout with Scripts; 0 for the default
	Fleet      string        // fleetCayenne, fleetObject or fleetJS
	Object     bool          // the stream carries the network server's decoded object
	Disk       bool          // measure InfluxDB's disk after a full compaction
	Telegraf   string        // Telegraf binary, for consumerTelegraf
	Baseline   string        // sensorgate binary of consumerBaseline
	Rate       float64       // live mode: uplinks offered per second; 0 as fast as the broker takes them
	Warm       bool          // live sensorgate runs: every device heard once before the measurement
	// JSEvery > 0 gives every JSEvery-th device of the fleet the model
	// JSModel, a JavaScript codec in Scripts (the soak's quarter of
	// devices decoded in JavaScript); the others keep the built-in one.
	JSEvery int
	JSModel string
	// SpoolMaxBytes is spool.max_bytes; 0 for the default (1 GiB).
	SpoolMaxBytes int64
	// CommitDelay is spool.commit_delay; "" for the default.
	CommitDelay string
	// httpAddr is where the last config written has the daemon's HTTP
	// API (metrics) listen.
	httpAddr string
	log      io.Writer // progress
}

// Fleets: how the devices of the stream are decoded.
const (
	fleetCayenne = "cayenne" // sensorgate's built-in Cayenne LPP decoder (model cayenne-lpp)
	fleetObject  = "object"  // the network server's decoded object, lifted onto the catalogue by the source's map
	fleetJS      = "js"      // a JavaScript Cayenne LPP codec (testdata/codecs/bench)
)

// Run is the measurement of one consumer on one fresh broker and database.
type Run struct {
	Pair       int     `json:"pair"` // from 1; 0 is the profiling run
	Consumer   string  `json:"consumer"`
	Seconds    float64 `json:"seconds"` // backlog: from the consumer's start; live: from the first publish
	MsgsPerS   float64 `json:"msgs_per_s"`
	Ratio      float64 `json:"ratio,omitempty"` // sensorgate ÷ the no-op of the same pair
	CPUSeconds float64 `json:"cpu_s"`           // consumer process only, utime+stime
	CPUPer100k float64 `json:"cpu_s_per_100k"`
	// CPURatio is sensorgate's CPU per message ÷ the no-op's in the same
	// pair: steadier across machines and hours than CPU-s alone, since a
	// slow spell slows both.
	CPURatio float64 `json:"cpu_ratio,omitempty"`
	// The servers' CPU over the same span, per 100k messages: with them
	// on the same two cores, they bound what any consumer can reach.
	BrokerCPUPer100k float64 `json:"broker_cpu_s_per_100k"`
	InfluxCPUPer100k float64 `json:"influxdb_cpu_s_per_100k"`
	// OthersCPUPer100k is the CPU time the whole machine spent on
	// anything but the consumer over the same span, per 100k messages:
	// the servers, in live mode the benchmark's publisher, its polling
	// of InfluxDB, and whatever else ran.
	OthersCPUPer100k float64 `json:"others_cpu_s_per_100k"`
	// RatioBound is the highest ratio any consumer could reach on this
	// machine while InfluxDB gets the same points: one costing no CPU at
	// all, with everything else costing what it did in this run (see
	// ratioBound). Sensorgate runs with a successful no-op only.
	RatioBound float64 `json:"ratio_bound,omitempty"`
	PeakRSSMB  float64 `json:"peak_rss_mb"` // VmHWM, MiB
	// ReadCalls and WriteCalls are the consumer's read and write system
	// calls (files and sockets) over the same span as CPUSeconds.
	ReadCalls  int64 `json:"read_syscalls"`
	WriteCalls int64 `json:"write_syscalls"`
	// Delivered is the exact count of uplink points in InfluxDB
	// (sensorgate) or of messages acknowledged (no-op).
	Delivered   int   `json:"delivered"`
	DupFlagged  int   `json:"dup_flagged,omitempty"` // no-op: redeliveries the broker marked DUP
	Lost        int   `json:"lost"`
	DeadLetters int   `json:"dead_letters,omitempty"`
	MsgBytes    int64 `json:"msg_bytes"` // payload bytes published, the same for every run
	// BrokerPersisted says the broker could write its persistence file:
	// persistence was on in fact, not only in its config.
	BrokerPersisted bool `json:"broker_persisted"`
	// What the consumer wrote to InfluxDB per uplink over the run, from
	// InfluxDB's own statistics (GET /debug/vars): points, bytes of line
	// protocol (after gzip was undone) and write requests; and the bytes
	// of its TSM files per uplink after a full compaction. Zero when not
	// measured (the no-op; an InfluxDB elsewhere; -disk=false).
	InfluxPoints   float64 `json:"influxdb_points_per_uplink,omitempty"`
	InfluxLPBytes  float64 `json:"influxdb_lp_bytes_per_uplink,omitempty"`
	InfluxRequests int64   `json:"influxdb_write_requests,omitempty"`
	DiskBytes      float64 `json:"influxdb_disk_bytes_per_uplink,omitempty"`
	// Live mode: the time from the broker's acknowledgement of a publish
	// to its uplink point answering a query, median and 99th percentile
	// over LatencyN sampled uplinks (latencyProbe).
	LatencyP50Ms float64 `json:"latency_p50_ms,omitempty"`
	LatencyP99Ms float64 `json:"latency_p99_ms,omitempty"`
	LatencyN     int     `json:"latency_samples,omitempty"`
	Err          string  `json:"error,omitempty"`
}

// profiling asks a sensorgate run to record a CPU profile.
type profiling struct {
	file    string
	seconds int
}

func topicFilter(format string) string {
	if format == simulate.TTSV3 {
		return "v3/+/devices/+/up"
	}
	return "application/+/device/+/event/up"
}

// runOne measures one consumer on its own broker, database and
// directory, and stops everything it started before returning.
func runOne(ctx context.Context, s *settings, consumer string, pair int, prof *profiling) Run {
	r := Run{Pair: pair, Consumer: consumer}
	name := strings.ReplaceAll(consumer, "-", "")
	h, err := newHarness(filepath.Join(s.WorkDir, fmt.Sprintf("run%d-%s", pair, name)))
	if err != nil {
		r.Err = err.Error()
		return r
	}
	if err := h.do(func() error { return s.measure(ctx, h, &r, prof) }); err != nil {
		r.Err = err.Error()
	}
	if err := h.close(s.Keep); err != nil {
		fmt.Fprintln(s.log, "warning:", err)
	}
	return r
}

// measure is one run: servers, session, stream, consumer, numbers.
func (s *settings) measure(ctx context.Context, h *harness, r *Run, prof *profiling) error {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	mq := testserver.StartMosquitto(h)
	var db *testserver.InfluxDB
	if s.InfluxURL == "" {
		db = testserver.StartInfluxDB(h)
	} else {
		db = testserver.UseInfluxDB(h, s.InfluxURL, fmt.Sprintf("sensorgate_bench_%d_%s", time.Now().UnixNano(), strings.ReplaceAll(r.Consumer, "-", "")))
		h.Cleanup(func() {
			if err := db.DropDatabase(); err != nil {
				fmt.Fprintf(s.log, "  %v: drop it by hand\n", err)
			}
		})
	}
	fleet, err := simulate.NewFleet(simulate.Options{Format: s.Format, Devices: s.Devices, Seed: s.Seed, Object: s.Object})
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	topic := topicFilter(s.Format)
	clientID := "bench-" + strings.ReplaceAll(r.Consumer, "-", "")

	// The consumer's persistent session exists before anything is
	// published, in both modes: nothing published is missed, and the
	// broker queues what the consumer has not taken yet.
	if err := presubscribe(ctx, mq.URL(), clientID, topic); err != nil {
		return err
	}
	// The uplinks published, in order: they let waitUplinks ask InfluxDB
	// a cheap question (is the newest one there?) before the exact count,
	// which scans every uplink point.
	var sent []uplinkID
	var probe *latencyProbe
	if s.Mode == modeLive && r.Consumer != consumerNoop {
		probe = newLatencyProbe(db, s.N)
	}
	allPublished := make(chan struct{})
	publish := func() error {
		defer close(allPublished)
		return simulate.Publish(ctx, fleet, simulate.PublishOptions{
			Broker: mq.URL(), ClientID: "bench-publisher", QoS: 1, Count: s.N, Rate: s.Rate,
			OnPublished: func(m simulate.Message) {
				r.MsgBytes += int64(len(m.Payload))
				sent = append(sent, uplinkID{m.Time.UnixNano(), m.DevEUI.String()})
				if probe != nil {
					probe.published(m.DevEUI.String(), m.Time)
				}
			},
		})
	}
	if s.Mode == modeBacklog {
		fmt.Fprintf(s.log, "  publishing %d uplinks while %s is stopped\n", s.N, r.Consumer)
		if err := publish(); err != nil {
			return fmt.Errorf("bench: backlog: %w", err)
		}
	}

	var p *consumerProc
	var pprofAddr string
	switch r.Consumer {
	case consumerSensorgate, consumerBaseline:
		bin := s.Sensorgate
		if r.Consumer == consumerBaseline {
			bin = s.Baseline
		}
		cfg, err := s.writeSensorgateConfig(h, bin, mq.URL(), db.URL(), db.Bucket(), clientID, topic, fleet)
		if err != nil {
			return err
		}
		cmd := exec.Command(bin, "run", "-c", cfg)
		cmd.Env = append(os.Environ(), s.Env...)
		if prof != nil {
			pprofAddr = "127.0.0.1:" + strconv.Itoa(testserver.FreePort(h))
			cmd.Env = append(cmd.Env, "SENSORGATE_PPROF="+pprofAddr)
		}
		p = newConsumerProc(cmd, filepath.Join(h.dir, "sensorgate.log"), false)
	case consumerTelegraf:
		cmd, err := s.telegrafCommand(h, mq.URL(), db.URL(), db.Bucket(), clientID, topic)
		if err != nil {
			return err
		}
		p = newConsumerProc(cmd, filepath.Join(h.dir, "telegraf.log"), false)
	default:
		cmd := exec.Command(s.Self, "noop", "-broker", mq.URL(), "-client-id", clientID, "-topic", topic, "-n", strconv.Itoa(s.N))
		p = newConsumerProc(cmd, filepath.Join(h.dir, "noop.log"), true)
	}

	// others reads the CPU seconds of the servers and of the machine as
	// a whole, what the run cost besides the consumer.
	type cpuOthers struct{ broker, influx, busy float64 }
	others := func() (o cpuOthers, err error) {
		if o.broker, err = cpuSeconds(mq.PID()); err == nil && db.PID() != 0 {
			o.influx, err = cpuSeconds(db.PID()) // not for an InfluxDB elsewhere
		}
		if err == nil {
			o.busy, err = machineBusySeconds()
		}
		return o, err
	}
	others0, err := others()
	if err != nil {
		return err
	}
	began := time.Now()
	if err := p.start(); err != nil {
		return err
	}
	h.Cleanup(p.stop)
	var profDone chan error
	if prof != nil {
		profDone = make(chan error, 1)
		go func() { profDone <- fetchProfile(ctx, pprofAddr, prof) }()
	}
	cpu0 := 0.0 // backlog: the process starts with the clock
	warm := 0   // uplinks of the warm-up, in InfluxDB before the measured ones
	var reads0, writes0 int64
	published := make(chan error, 1)
	if s.Mode == modeLive {
		// Publishing starts once the consumer holds its session, so
		// publishing and consuming overlap from the first message.
		if err := waitConnected(ctx, mq.Port, p); err != nil {
			return err
		}
		if s.Warm && r.Consumer == consumerSensorgate {
			if err := warmUp(ctx, h, db, mq.URL(), fleet, p, s.Poll, s.log); err != nil {
				return err
			}
			warm = s.Devices
		}
		if cpu0, err = treeCPUSeconds(p.pid()); err != nil {
			return err
		}
		if reads0, writes0, err = ioCalls(p.pid()); err != nil {
			return err
		}
		if others0, err = others(); err != nil {
			return err
		}
		fmt.Fprintf(s.log, "  %s connected; publishing %d uplinks\n", r.Consumer, s.N)
		began = time.Now()
		if probe != nil {
			probeCtx, stopProbe := context.WithCancel(ctx)
			defer stopProbe()
			go probe.run(probeCtx, 10*time.Millisecond)
		}
		go func() { published <- publish() }()
	} else {
		published <- nil
	}

	// Wait until the consumer is done: InfluxDB holds N uplinks, or the
	// no-op acknowledged N messages. The consumer's clock and counters
	// are read as soon as it is done: for sensorgate when the newest
	// uplink is in InfluxDB, before the exact count, which over 100,000
	// series took InfluxDB tens of seconds on a loaded machine, during
	// which the daemon's idle CPU would have counted as the uplinks'.
	var end struct {
		elapsed       time.Duration
		cpu           float64
		reads, writes int64
		others        cpuOthers
		err           error
		taken         bool
	}
	sample := func() {
		end.elapsed, end.taken = time.Since(began), true
		if end.cpu, end.err = treeCPUSeconds(p.pid()); end.err != nil {
			return
		}
		if end.reads, end.writes, end.err = ioCalls(p.pid()); end.err != nil {
			return
		}
		end.others, end.err = others()
	}
	if r.Consumer != consumerNoop {
		err = waitUplinks(ctx, h, db, warm+s.N, s.Poll, p, allPublished, &sent, sample)
	} else {
		err = p.waitLine(ctx, "done")
	}
	if err != nil {
		return err
	}
	if probe != nil {
		// Every uplink is in: settle the samples still pending.
		if err := probe.poll(); err != nil {
			return fmt.Errorf("bench: latency probe: %w", err)
		}
		p50, p99, n, err := probe.result()
		if err != nil {
			return err
		}
		r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyN = float64(p50)/float64(time.Millisecond), float64(p99)/float64(time.Millisecond), n
	}
	if !end.taken {
		sample()
	}
	if end.err != nil {
		return end.err
	}
	elapsed, cpu1, reads1, writes1, others1 := end.elapsed, end.cpu, end.reads, end.writes, end.others
	rss, err := peakRSSKiB(p.pid())
	if err != nil {
		return err
	}
	var writes testserver.WriteStats
	if r.Consumer != consumerNoop && db.PID() != 0 {
		if writes, err = db.WriteStats(); err != nil {
			return err
		}
	}
	if err := <-published; err != nil {
		return fmt.Errorf("bench: live publish: %w", err)
	}
	if prof != nil {
		// The heap at the end of the drain says where the peak RSS went.
		heap := prof.file + ".heap"
		if err := fetch(ctx, "http://"+pprofAddr+"/debug/pprof/heap", heap, time.Minute); err != nil {
			return err
		}
		fmt.Fprintf(s.log, "  heap profile at the end of the drain: %s\n", heap)
	}
	if profDone != nil {
		fmt.Fprintf(s.log, "  waiting for the %d s CPU profile\n", prof.seconds)
		if err := <-profDone; err != nil {
			return err
		}
	}
	p.stop()
	// The database appears at the first autosave (1 s); a short run may
	// end before it, but the log, opened at start by the same user in
	// the same directory, shows the broker can write there.
	_, errDB := os.Stat(filepath.Join(mq.Dir, "mosquitto.db"))
	r.BrokerPersisted = errDB == nil || mq.Log() != ""

	r.Seconds = elapsed.Seconds()
	r.MsgsPerS = float64(s.N) / r.Seconds
	r.CPUSeconds = cpu1 - cpu0
	r.ReadCalls, r.WriteCalls = reads1-reads0, writes1-writes0
	r.CPUPer100k = r.CPUSeconds / float64(s.N) * 100000
	r.BrokerCPUPer100k = (others1.broker - others0.broker) / float64(s.N) * 100000
	r.InfluxCPUPer100k = (others1.influx - others0.influx) / float64(s.N) * 100000
	r.OthersCPUPer100k = max(0, others1.busy-others0.busy-r.CPUSeconds) / float64(s.N) * 100000
	r.PeakRSSMB = float64(rss) / 1024
	if r.Consumer != consumerNoop {
		// After the consumer stopped: an exact count, with anything that
		// arrived after the poll saw N.
		r.Delivered = countUplinks(h, db) - warm
		dls, _ := deadletter.ReadAll(filepath.Join(h.dir, "state", deadletter.FileName))
		r.DeadLetters = len(dls)
	} else {
		r.Delivered, r.DupFlagged = p.final()
	}
	r.Lost = max(0, s.N-r.Delivered)
	if writes.Requests > 0 {
		r.InfluxPoints = float64(writes.Points) / float64(s.N)
		r.InfluxLPBytes = float64(writes.Bytes) / float64(s.N)
		r.InfluxRequests = writes.Requests
	}
	if r.Consumer != consumerNoop && db.PID() != 0 && s.Disk {
		fmt.Fprintf(s.log, "  compacting InfluxDB fully to measure its disk\n")
		tsm, err := db.CompactFully(5 * time.Minute)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		r.DiskBytes = float64(tsm) / float64(s.N)
	}
	return nil
}

// telegrafConfig is the Telegraf configuration of the comparison, kept
// in the repository beside this file (telegraf.conf).
//
//go:embed telegraf.conf
var telegrafConfig []byte

// telegrafCommand writes the Telegraf configuration into the run's
// directory and returns the command running it against this run's
// broker and database.
func (s *settings) telegrafCommand(h *harness, broker, influxURL, bucket, clientID, topic string) (*exec.Cmd, error) {
	path := filepath.Join(h.dir, "telegraf.conf")
	if err := os.WriteFile(path, telegrafConfig, 0o644); err != nil {
		return nil, fmt.Errorf("bench: telegraf config: %w", err)
	}
	cmd := exec.Command(s.Telegraf, "--config", path)
	cmd.Env = append(os.Environ(), "SG_BROKER="+broker, "SG_TOPIC="+topic, "SG_CLIENT_ID="+clientID,
		"SG_INFLUX_URL="+influxURL, "SG_BUCKET="+bucket)
	return cmd, nil
}

// warmUp publishes one uplink of every device of the fleet, in turn, and
// waits until InfluxDB holds them all: what a measurement that follows
// sees is the daemon's steady state, every device heard before (its
// health record, its cached tags, its series in InfluxDB), as in a city
// whose sensors have all reported since the last restart. The first
// uplink of a device costs more, once (BENCHMARKS.md, fleet size).
func warmUp(ctx context.Context, h *harness, db *testserver.InfluxDB, broker string, fleet *simulate.Fleet, p *consumerProc, poll time.Duration, log io.Writer) error {
	n := len(fleet.Devices())
	fmt.Fprintf(log, "  warm-up: one uplink from each of the %d devices\n", n)
	var sent []uplinkID
	err := simulate.Publish(ctx, fleet, simulate.PublishOptions{Broker: broker, ClientID: "bench-warmup", QoS: 1, Count: n, InOrder: true,
		OnPublished: func(m simulate.Message) { sent = append(sent, uplinkID{m.Time.UnixNano(), m.DevEUI.String()}) }})
	if err != nil {
		return fmt.Errorf("bench: warm-up: %w", err)
	}
	// As for the measured uplinks: the cheap question (is the newest
	// there?) before the exact count, which scans every series and, asked
	// twice a second of 100,000 devices, held InfluxDB up for longer than
	// a query may take.
	done := make(chan struct{})
	close(done)
	if err := waitUplinks(ctx, h, db, n, max(poll, time.Second), p, done, &sent, nil); err != nil {
		return fmt.Errorf("bench: warm-up: %w", err)
	}
	return nil
}

// writeSensorgateConfig writes the daemon's config and devices file: the
// simulated fleet with its decoder model, so every uplink is decoded and
// normalized, and the spool syncing every append (fsync: always), the
// configuration the targets (report.go) are set for.
func (s *settings) writeSensorgateConfig(h *harness, bin, broker, influxURL, bucket, clientID, topic string, fleet *simulate.Fleet) (string, error) {
	// CSV rather than YAML: a YAML file is parsed as one tree, which
	// for 100,000 devices took the daemon to 600 MB at start.
	fleetDevs := fleet.Devices()
	if s.JSEvery > 0 {
		for i := 0; i < len(fleetDevs); i += s.JSEvery {
			fleetDevs[i].Model = s.JSModel
		}
	}
	var devs bytes.Buffer
	source := ""
	if s.Fleet == fleetObject {
		// The network server decodes: the devices have no model, and the
		// source lifts the object's keys onto the catalogue, as an
		// operator configures a ChirpStack feed with codecs of its own.
		for i := range fleetDevs {
			fleetDevs[i].Model = ""
		}
		source = `, map: [{key: temperatureSensor.1, quantity: air.temperature}, {key: humiditySensor.2, quantity: air.relativeHumidity}, {key: barometer.3, quantity: air.pressure}]`
	}
	if err := devices.WriteCSV(&devs, fleetDevs); err != nil {
		return "", fmt.Errorf("bench: devices file: %w", err)
	}
	devPath := filepath.Join(h.dir, "devices.csv")
	if err := os.WriteFile(devPath, devs.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("bench: devices file: %w", err)
	}
	// The HTTP API on a free port: the default 8080 may be taken by a
	// daemon already running on the machine, which would fail the run.
	s.httpAddr = "127.0.0.1:" + strconv.Itoa(testserver.FreePort(h))
	spoolMax := ""
	if s.SpoolMaxBytes > 0 {
		spoolMax = fmt.Sprintf(", max_bytes: %d", s.SpoolMaxBytes)
	}
	if s.CommitDelay != "" {
		spoolMax += fmt.Sprintf(", commit_delay: %q", s.CommitDelay)
	}
	cfg := fmt.Sprintf(`log: {level: warn, format: json}
state_dir: %q
http: {listen: %q}
spool: {fsync: always%s}
sources:
  - {name: bench, type: mqtt, format: %s, broker: %q, topics: [%q], client_id: %s, qos: 1%s}
influx: {url: %q, bucket: %q}
devices: {tags: [district, site]}
`, filepath.Join(h.dir, "state"), s.httpAddr, spoolMax, s.Format, broker, topic, clientID, source, influxURL, bucket)
	if s.Warm {
		// The periodic state save (every 30 s by default) writes a health
		// row per device heard since the last one: after a warm-up, all of
		// them, at once, in whichever run the tick falls. Its cost is per
		// device heard per interval, not per uplink, and is measured on
		// its own (BenchmarkSaveHealth10k); here it stays out of the runs.
		cfg = strings.Replace(cfg, "devices: {tags: [district, site]}", "devices: {tags: [district, site], state_save_interval: 1h}", 1)
	}
	if s.Registry == registryPostgres {
		// A database of its own on the machine's PostgreSQL, dropped when
		// the run closes (testserver.PostgresDB through the harness).
		cfg += fmt.Sprintf("registry: {driver: postgres, dsn: %q}\n", testserver.PostgresDB(h))
	}
	if s.Scripts != "" {
		cfg += fmt.Sprintf("decoders: {scripts: %q", s.Scripts)
		if s.Sandbox != "" {
			cfg += fmt.Sprintf(", sandbox: %q", s.Sandbox)
		}
		if s.CodecTime > 0 {
			cfg += fmt.Sprintf(", timeout: %s", s.CodecTime) // worker_timeout defaults to 4×
		}
		cfg += "}\n"
	}
	path := filepath.Join(h.dir, "sensorgate.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return "", fmt.Errorf("bench: config: %w", err)
	}
	// The fleet is imported into the registry before the measured
	// process starts, as an operator's fleet is: the daemon loads it from
	// its database, and a devices file parsed at every start (devices.
	// import) would put the parse's garbage into the measurement.
	imp := exec.Command(bin, "devices", "import", "-c", path, devPath)
	if out, err := imp.CombinedOutput(); err != nil {
		return "", fmt.Errorf("bench: import the fleet: %w\n%s", err, out)
	}
	return path, nil
}

// presubscribe creates the consumer's persistent session: connect with its
// client id and clean session off, subscribe at QoS 1, disconnect.
func presubscribe(ctx context.Context, broker, clientID, topic string) error {
	c := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID(clientID).
		SetProtocolVersion(4).SetCleanSession(false).SetConnectTimeout(10 * time.Second))
	if err := waitToken(ctx, c.Connect()); err != nil {
		return fmt.Errorf("bench: presubscribe %s: connect: %w", clientID, err)
	}
	defer c.Disconnect(100)
	if err := waitToken(ctx, c.Subscribe(topic, 1, nil)); err != nil {
		return fmt.Errorf("bench: presubscribe %s: subscribe %s: %w", clientID, topic, err)
	}
	return nil
}

func waitToken(ctx context.Context, t paho.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitConnected waits until the consumer holds a connection to the
// broker. Its persistent session already exists, so from CONNACK on it
// takes what is published; the moments between TCP connect and CONNACK
// are negligible next to a run.
func waitConnected(ctx context.Context, port int, p *consumerProc) error {
	for {
		ok, err := connectedTo(p.pid(), port)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bench: the consumer did not connect to the broker: %w", ctx.Err())
		case <-p.exited:
			return fmt.Errorf("bench: the consumer exited before connecting; see %s", p.logPath)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// waitUplinks polls InfluxDB until it holds n uplink points. Counting
// every uplink point ten times a second cost InfluxDB 1–2 CPU-s per 100k
// messages, taken from the consumer being measured on the same two
// cores. So once everything is published (*published is then complete)
// it first asks whether the newest uplink is in: a question about one
// device's series over a second, which InfluxDB answers without touching
// the other series (asking about the newest 1000 uplinks of all devices
// still cost it about 6 % of its CPU in a drain). Only then does it count
// all. Delivery keeps the broker's order closely, so that leaves a few
// full counts at the end.
func waitUplinks(ctx context.Context, h *harness, db *testserver.InfluxDB, n int, every time.Duration, p *consumerProc, allPublished <-chan struct{}, published *[]uplinkID, atNewest func()) error {
	var gate *uplinkGate
	for {
		got := -1
		select {
		case <-allPublished:
			if gate == nil {
				gate = newestGate(*published)
			}
			if gate.count(h, db) >= gate.want {
				if atNewest != nil {
					atNewest()
					atNewest = nil
				}
				got = countUplinks(h, db)
			}
		default:
		}
		if got >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bench: InfluxDB holds %d of %d uplinks: %w", countUplinks(h, db), n, ctx.Err())
		case <-p.exited:
			return fmt.Errorf("bench: sensorgate exited with %d of %d uplinks in InfluxDB; see %s", countUplinks(h, db), n, p.logPath)
		case <-time.After(every):
		}
	}
}

// uplinkID is a published uplink: its time (ns) and its device's EUI as
// the dev_eui tag has it.
type uplinkID struct {
	t   int64
	eui string
}

// uplinkGate asks whether the newest uplink has reached InfluxDB: the
// points of the newest uplink's device from a second before its time on
// (a feed's time may be stored rounded), and how many were published.
type uplinkGate struct {
	eui   string
	since int64
	want  int
}

func newestGate(published []uplinkID) *uplinkGate {
	if len(published) == 0 {
		return &uplinkGate{}
	}
	newest := published[0]
	for _, u := range published[1:] {
		if u.t >= newest.t {
			newest = u
		}
	}
	g := &uplinkGate{eui: newest.eui, since: newest.t - int64(time.Second)}
	for _, u := range published {
		if u.eui == g.eui && u.t >= g.since {
			g.want++
		}
	}
	return g
}

// count asks InfluxDB for the gate's points.
func (g *uplinkGate) count(h *harness, db *testserver.InfluxDB) int {
	if g.want == 0 {
		return 0
	}
	return sumCounts(db.Query(h, fmt.Sprintf(`SELECT count("f_cnt") FROM "uplink" WHERE "dev_eui" = '%s' AND time >= %d`, g.eui, g.since)))
}

// countUplinks asks for count(f_cnt) of the uplink measurement: every
// uplink point of the stream has f_cnt (sensorgate's and Telegraf's
// alike; rssi left sensorgate's uplink point in schema 2), and the aggregate is answered from the index and
// blocks without returning the rows, so polling it stays cheap.
func countUplinks(h *harness, db *testserver.InfluxDB) int {
	return sumCounts(db.QueryWithin(h, `SELECT count("f_cnt") FROM "uplink"`, countTimeout))
}

// countTimeout bounds the exact count: over 100,000 series (-devices
// 100000) on a loaded machine it took more than the 30 s of other
// queries.
const countTimeout = 5 * time.Minute

// sumCounts adds up the counts of a count() query's rows.
func sumCounts(series []testserver.Series) int {
	n := 0
	for _, s := range series {
		for _, row := range s.Values {
			if len(row) < 2 {
				continue
			}
			if v, err := strconv.Atoi(fmt.Sprint(row[1])); err == nil {
				n += v
			}
		}
	}
	return n
}

// fetchProfile records a CPU profile of the daemon through its opt-in
// pprof endpoint, starting as soon as the endpoint listens.
func fetchProfile(ctx context.Context, addr string, prof *profiling) error {
	_, port, _ := strings.Cut(addr, ":")
	pn, _ := strconv.Atoi(port)
	if err := testserver.WaitListening(pn, 30*time.Second); err != nil {
		return fmt.Errorf("bench: pprof endpoint: %w", err)
	}
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, prof.seconds)
	return fetch(ctx, url, prof.file, time.Duration(prof.seconds)*time.Second+time.Minute)
}

// fetch writes what GET url returns into file.
func fetch(ctx context.Context, url, file string, timeout time.Duration) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("bench: %s: %w", url, err)
	}
	client := &http.Client{Timeout: timeout}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("bench: %s: %s: %s", url, resp.Status, b)
	}
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("bench: write %s: %w", file, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("bench: write %s: %w", file, err)
	}
	return nil
}

// consumerProc is the measured process, sensorgate or the no-op
// subscriber, stopped by its PID.
type consumerProc struct {
	cmd     *exec.Cmd
	logPath string
	logf    *os.File
	exited  chan struct{} // closed once the process has been waited for
	lines   chan string   // the no-op's stdout lines; nil for sensorgate
	last    []string      // lines read by waitLine, for final
	stopped bool
}

func newConsumerProc(cmd *exec.Cmd, logPath string, readLines bool) *consumerProc {
	p := &consumerProc{cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	if readLines {
		p.lines = make(chan string, 16)
	}
	return p
}

func (p *consumerProc) start() error {
	logf, err := os.Create(p.logPath)
	if err != nil {
		return fmt.Errorf("bench: consumer log: %w", err)
	}
	p.logf = logf
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	var pw *os.File
	if p.lines != nil {
		// A pipe of our own rather than StdoutPipe, so Wait can run
		// while the reader goroutine still drains it.
		pr, w, err := os.Pipe()
		if err != nil {
			logf.Close()
			return fmt.Errorf("bench: pipe: %w", err)
		}
		pw = w
		p.cmd.Stdout = pw
		go func() {
			defer close(p.lines)
			defer pr.Close()
			sc := bufio.NewScanner(pr)
			for sc.Scan() {
				p.lines <- sc.Text()
			}
		}()
	}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		if pw != nil {
			pw.Close()
		}
		return fmt.Errorf("bench: start %s: %w", p.cmd.Path, err)
	}
	if pw != nil {
		pw.Close() // the child holds its copy; EOF comes when it exits
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	return nil
}

func (p *consumerProc) pid() int { return p.cmd.Process.Pid }

// waitLine waits for a stdout line starting with prefix.
func (p *consumerProc) waitLine(ctx context.Context, prefix string) error {
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				return fmt.Errorf("bench: %s exited before %q; see %s", p.cmd.Path, prefix, p.logPath)
			}
			p.last = append(p.last, line)
			if strings.HasPrefix(line, prefix) {
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("bench: waiting for %q from the no-op subscriber: %w", prefix, ctx.Err())
		}
	}
}

// final returns the no-op's counts from its "final" line (written at
// exit), else from its "done" line.
func (p *consumerProc) final() (received, dups int) {
	for line := range p.lines { // closed at the child's exit, after stop
		p.last = append(p.last, line)
	}
	for _, line := range p.last {
		f := strings.Fields(line)
		if len(f) < 3 || (f[0] != "final" && f[0] != "done") {
			continue
		}
		received, _ = strconv.Atoi(strings.TrimPrefix(f[1], "received="))
		dups, _ = strconv.Atoi(strings.TrimPrefix(f[2], "dup="))
	}
	return received, dups
}

// stop sends SIGTERM and waits; SIGKILL after 20 s (sensorgate's shutdown
// drains for up to 10 s). Safe to call twice.
func (p *consumerProc) stop() {
	if p.stopped || p.cmd.Process == nil {
		return
	}
	p.stopped = true
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	p.logf.Close()
}
