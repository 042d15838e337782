package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/internal/simulate"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

var (
	e2eN       = flag.Int("e2e.n", 5000, "uplinks per end-to-end benchmark run")
	e2eDevices = flag.Int("e2e.devices", 500, "simulated devices in the end-to-end benchmark")
	e2eFormat  = flag.String("e2e.format", simulate.ChirpStackV4, "feed format of the end-to-end benchmark")
)

// BenchmarkEndToEnd publishes N uplinks through a real Mosquitto into a real
// InfluxDB via a sensorgate process, and reports messages/s (from the first
// publish until InfluxDB holds all N), the daemon's CPU seconds per 100k
// messages and its peak RSS. It is the quick check (small N, one fresh
// broker, database and daemon per iteration):
//
//	go test -run '^$' -bench EndToEnd -benchtime 1x ./cmd/sensorgate
//
// The benchmark of record is cmd/sensorgate-bench (`make bench-e2e`,
// `make bench-e2e-live`): 100k uplinks, backlog and live modes, interleaved
// with a no-op subscriber, results appended to BENCHMARKS.md.
func BenchmarkEndToEnd(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "sensorgate")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build sensorgate: %v\n%s", err, out)
	}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		mq := testserver.StartMosquitto(b)
		db := testserver.StartInfluxDB(b)
		dir := b.TempDir()
		fleet, err := simulate.NewFleet(simulate.Options{Format: *e2eFormat, Devices: *e2eDevices, Seed: 99})
		if err != nil {
			b.Fatal(err)
		}
		writeYAML(b, filepath.Join(dir, "devices.yaml"), map[string]any{"devices": fleet.Devices()})
		topic := "application/+/device/+/event/up"
		if *e2eFormat == simulate.TTSV3 {
			topic = "v3/+/devices/+/up"
		}
		cfg := fmt.Sprintf(`log: {level: warn, format: json}
state_dir: %[1]s/state
spool: {fsync: always}
sources:
  - {name: bench, type: mqtt, format: %[4]s, broker: %[2]q, topics: [%[5]q], client_id: bench-sensorgate, qos: 1}
influx: {url: %[3]q, bucket: sensors/autogen}
devices: {import: %[1]s/devices.yaml, tags: [district, site]}
`, dir, mq.URL(), db.URL(), *e2eFormat, topic)
		cfgPath := filepath.Join(dir, "sensorgate.yaml")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
			b.Fatal(err)
		}
		presubscribe(b, mq.URL(), "bench-sensorgate", []string{topic})
		daemon := exec.Command(bin, "run", "-c", cfgPath)
		logf, _ := os.Create(filepath.Join(dir, "sensorgate.log"))
		daemon.Stdout, daemon.Stderr = logf, logf
		if err := daemon.Start(); err != nil {
			b.Fatal(err)
		}
		pid := daemon.Process.Pid
		cpu0 := cpuSeconds(b, pid)

		b.StartTimer()
		began := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		if err := simulate.Publish(ctx, fleet, simulate.PublishOptions{Broker: mq.URL(), ClientID: "bench-publisher", QoS: 1, Count: *e2eN}); err != nil {
			b.Fatal(err)
		}
		for uplinkCount(b, db) < *e2eN {
			if ctx.Err() != nil {
				b.Fatalf("InfluxDB holds %d of %d uplinks after 10 minutes", uplinkCount(b, db), *e2eN)
			}
			time.Sleep(100 * time.Millisecond)
		}
		el := time.Since(began)
		b.StopTimer()
		cancel()
		cpu := cpuSeconds(b, pid) - cpu0
		rss := peakRSSKiB(b, pid)
		_ = daemon.Process.Signal(syscall.SIGTERM)
		_ = daemon.Wait()
		logf.Close()
		if n := uplinkCount(b, db); n != *e2eN {
			b.Fatalf("InfluxDB holds %d uplinks, want exactly %d", n, *e2eN)
		}
		b.ReportMetric(float64(*e2eN)/el.Seconds(), "msgs/s")
		b.ReportMetric(cpu/float64(*e2eN)*100000, "cpu-s/100k")
		b.ReportMetric(float64(rss)/1024, "peak-rss-MB")
	}
}

// uplinkCount is the number of uplink points, by count(rssi) (every uplink
// point has rssi): polling it does not return every row the way Count's
// SELECT * does.
func uplinkCount(tb testing.TB, db *testserver.InfluxDB) int {
	n := 0
	for _, s := range db.Query(tb, `SELECT count("f_cnt") FROM "uplink"`) {
		for _, row := range s.Values {
			if len(row) > 1 {
				v, _ := strconv.Atoi(fmt.Sprint(row[1]))
				n += v
			}
		}
	}
	return n
}

// cpuSeconds reads a process's user+system CPU time from /proc.
func cpuSeconds(tb testing.TB, pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	// Fields after the parenthesised command name; utime and stime are the
	// 14th and 15th fields of the whole line.
	rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
	f := strings.Fields(rest)
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

// peakRSSKiB reads VmHWM, the process's peak resident set size.
func peakRSSKiB(tb testing.TB, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	tb.Fatal("no VmHWM in /proc status")
	return 0
}
