package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sensorgate/sensorgate/gateway/redecode"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// The codec of the fix scenario, as an operator's scripts folder holds
// it: v1 divides the temperature by 100 instead of 10, writes humidity as
// "humidity", a "legacy" field and air.lightIntensity; v2 is the vendor's
// fix: /10, humidity renamed "rh", legacy and light dropped, pressure
// and a firmware field "fw" added. Values normalizeUplink copies are
// stored once, under air (schema 2), so decoded_city_weather holds only
// legacy, then only fw. Both read the simulator's Cayenne LPP frame (temperature at
// bytes 2–3, humidity at 6, pressure at 9–10).
const (
	weatherCodecV1 = `function decodeUplink(input) {
  var b = input.bytes;
  var t = (b[2] << 8) | b[3]; if (t > 0x7fff) t -= 0x10000;
  return { data: { temperature: t / 100, humidity: b[6] / 2, legacy: 1 } };
}
function normalizeUplink(input) {
  return { data: { air: { temperature: input.data.temperature, relativeHumidity: input.data.humidity, lightIntensity: 0 } } };
}
`
	weatherCodecV2 = `function decodeUplink(input) {
  var b = input.bytes;
  if (b.length < 11) return { errors: ["short frame"] };
  var t = (b[2] << 8) | b[3]; if (t > 0x7fff) t -= 0x10000;
  return { data: { temperature: t / 10, rh: b[6] / 2, pressure: ((b[9] << 8) | b[10]) / 10, fw: 2 } };
}
function normalizeUplink(input) {
  return { data: { air: { temperature: input.data.temperature, relativeHumidity: input.data.rh, pressure: input.data.pressure } } };
}
`
)

// TestRedecodeCommand runs the operator's story end to end: a daemon
// decoded a day of uplinks from Mosquitto with a buggy JavaScript codec
// into InfluxDB and was stopped; the codec file is fixed; "sensorgate
// redecode --dry-run" shows the change and writes nothing; "sensorgate
// redecode" (no daemon running: in-process, delivering before it exits)
// corrects every value and leaves no field of the old codec.
func TestRedecodeCommand(t *testing.T) {
	r := newFaultRig(t, 21, 4)
	scripts := filepath.Join(r.dir, "scripts")
	if err := os.MkdirAll(scripts, 0o755); err != nil {
		t.Fatal(err)
	}
	codec := filepath.Join(scripts, "city-weather.js")
	if err := os.WriteFile(codec, []byte(weatherCodecV1), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range r.devs {
		r.devs[i].Model = "city-weather"
	}
	cfgPath := r.writeConfig(rigConfig{extra: fmt.Sprintf("decoders: {scripts: %q, sandbox: in-process}\n", scripts)})
	d := r.runInProcess(cfgPath)
	msgs := r.stream(300)
	publishAll(t, r.mq.URL(), msgs)
	awaitUplinks(t, r.db, len(msgs), time.Minute, r.daemonState(d))
	d.stop(t)
	want := expectSet{}
	want.add(msgs...)
	buggy := expectSet{}
	for k, v := range want {
		buggy[k] = math.Round(v*10) / 100 // as the codec computes it
	}
	assertPoints(t, r.db, want, buggy) // the bug, as stored

	if err := os.WriteFile(codec, []byte(weatherCodecV2), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	redecode := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := Main(ctx, append([]string{"redecode", "-c", cfgPath, "--since", "2026-03-01T00:00:00Z"}, args...), &out, &errb); code != 0 {
			t.Fatalf("redecode %v: exit %d\n%s\n%s", args, code, out.String(), errb.String())
		}
		if !strings.Contains(errb.String(), "no daemon on") || !strings.Contains(errb.String(), "redecode job 1: 300/300 uplinks") {
			t.Errorf("redecode %v: stderr should say it works in-process and end with a plain progress line:\n%s", args, errb.String())
		}
		return out.String()
	}

	out := redecode("--dry-run")
	for _, s := range []string{
		"job 1 done: 300 uplinks of 4 devices",
		"that would be written (dry run: nothing changed)",
		"fields added:   air.pressure, decoded_city_weather.fw",
		"fields removed: air.lightIntensity, decoded_city_weather.legacy",
		"air.temperature: before ",
	} {
		if strings.Count(out, s) != map[bool]int{true: 4, false: 1}[strings.HasPrefix(s, "fields") || strings.HasPrefix(s, "air.")] {
			t.Errorf("dry run output lacks %q (once per device):\n%s", s, out)
		}
	}
	assertPoints(t, r.db, want, buggy) // unchanged

	// On a terminal the progress is one line, rewritten in place.
	master, tty := openPTY(t)
	var progress bytes.Buffer
	copied := make(chan struct{})
	go func() { defer close(copied); _, _ = io.Copy(&progress, master) }()
	var outb bytes.Buffer
	if code := Main(ctx, []string{"redecode", "-c", cfgPath, "--since", "2026-03-01T00:00:00Z"}, &outb, tty); code != 0 {
		t.Fatalf("redecode: exit %d\n%s", code, outb.String())
	}
	tty.Close()
	<-copied
	if !strings.Contains(outb.String(), "job 1 done: 300 uplinks of 4 devices") {
		t.Errorf("redecode output:\n%s", outb.String())
	}
	if p := progress.String(); !strings.Contains(p, "\r\x1b[Kredecode job 1: 300/300 uplinks (100%), 4/4 devices, ") || !strings.Contains(p, " uplinks/s, ETA ") {
		t.Errorf("progress on a terminal: %q", p)
	}
	assertExactly(t, r.db, want) // corrected, one point per uplink
	for _, orphan := range [][2]string{{"air", "lightIntensity"}, {"decoded_city_weather", "humidity"}, {"decoded_city_weather", "legacy"}} {
		if n := countOf(t, r.db, orphan[0], orphan[1]); n != 0 {
			t.Errorf("%s.%s: %d values of the old codec left", orphan[0], orphan[1], n)
		}
	}
	if n := countOf(t, r.db, "decoded_city_weather", "fw"); n != len(msgs) {
		t.Errorf("decoded_city_weather.fw: %d values, want %d", n, len(msgs))
	}
	for _, field := range []string{"temperature", "rh", "pressure"} { // in air, once
		if n := countOf(t, r.db, "decoded_city_weather", field); n != 0 {
			t.Errorf("decoded_city_weather.%s: %d values, want 0: normalizeUplink copied it to air", field, n)
		}
	}
}

// TestRedecodeWhileLive: the daemon runs and takes uplinks from
// Mosquitto, dated inside the range, while "sensorgate redecode" (through
// the daemon's API) re-decodes that range: every uplink ends in InfluxDB
// exactly once with its decoded temperature, none lost, none doubled.
func TestRedecodeWhileLive(t *testing.T) {
	r := newFaultRig(t, 22, 20)
	cfgPath := r.writeConfig(rigConfig{})
	d := r.runInProcess(cfgPath)
	history := r.stream(1500)
	publishAll(t, r.mq.URL(), history)
	awaitUplinks(t, r.db, len(history), time.Minute, r.daemonState(d))

	live := r.stream(1000)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	var pubErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		pubErr = publishReliably(ctx, r.mq.URL(), "redecode-live", live, 2000, nil)
	}()
	var out, errb bytes.Buffer
	code := Main(ctx, []string{"redecode", "-c", cfgPath, "--since", "2026-03-01T00:00:00Z", "--json"}, &out, &errb)
	wg.Wait()
	if pubErr != nil {
		t.Fatal(pubErr)
	}
	var job redecode.JobStatus
	if err := json.Unmarshal(out.Bytes(), &job); code != 0 || strings.Contains(errb.String(), "no daemon on") || err != nil ||
		job.State != redecode.StateDone || job.Progress.UplinksDone < int64(len(history)) || job.Report == nil {
		t.Fatalf("redecode through the daemon: exit %d, job %+v (%v)\n%s\n%s", code, job, err, out.String(), errb.String())
	}
	all := append(history, live...)
	awaitUplinks(t, r.db, len(all), time.Minute, r.daemonState(d))
	want := expectSet{}
	want.add(all...)
	assertExactly(t, r.db, want)
}

// openPTY opens a pseudo-terminal: what the command writes to tty, the
// test reads from master. Closing tty ends master's reads.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	master = os.NewFile(uintptr(fd), "/dev/ptmx")
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock the pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Raw output: no newline translation, so the test sees the bytes.
	termios, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	termios.Oflag &^= unix.OPOST
	if err := unix.IoctlSetTermios(int(tty.Fd()), unix.TCSETS, termios); err != nil {
		t.Fatal(err)
	}
	return master, tty
}

// TestRedecodeWaitsForTheSpool: a job deletes nothing while points
// spooled before it are not in InfluxDB (they could be an older
// decoder's); when InfluxDB does not take them in time the job fails,
// saying why, the command exits 1, and nothing was deleted.
func TestRedecodeWaitsForTheSpool(t *testing.T) {
	r := newFaultRig(t, 24, 2)
	var refuse atomic.Bool
	proxy := testserver.StartInfluxProxy(t, r.db.URL(), func(testserver.WriteRequest) (int, http.Header) {
		if refuse.Load() {
			return http.StatusServiceUnavailable, nil
		}
		return 0, nil
	})
	cfgPath := r.writeConfig(rigConfig{influxURL: proxy.URL})
	d := r.runInProcess(cfgPath)
	msgs := r.stream(40)
	publishAll(t, r.mq.URL(), msgs[:39])
	awaitUplinks(t, r.db, 39, time.Minute, r.daemonState(d))
	airBefore := countOf(t, r.db, "air", "temperature")
	refuse.Store(true)
	publishAll(t, r.mq.URL(), msgs[39:])
	for deadline := time.Now().Add(time.Minute); d.spool.Stats().Pending == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the last uplink did not reach the spool\n%s", r.daemonState(d)())
		}
	}
	defer func(w time.Duration) { redecodeBarrierWait = w }(redecodeBarrierWait)
	redecodeBarrierWait = 500 * time.Millisecond
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"redecode", "-c", cfgPath, "--since", "2026-03-01T00:00:00Z"}, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "job 1 failed") || !strings.Contains(errb.String(), "the spool holds 1 records that InfluxDB did not take") {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	if n := countOf(t, r.db, "air", "temperature"); n != airBefore {
		t.Fatalf("air points %d, before the job %d: the job deleted while waiting", n, airBefore)
	}
	refuse.Store(false)
	awaitUplinks(t, r.db, len(msgs), time.Minute, r.daemonState(d))
	want := expectSet{}
	want.add(msgs...)
	assertExactly(t, r.db, want)
}
