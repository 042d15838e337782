package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/deadletter"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// codecPayloads are uplinks each test codec decodes (the same frames as
// BenchmarkSandboxManyCodecs), by the model of the codec a generated one
// copies. sensorgate has a built-in decoder of each model too: the run
// without scripts decodes the same frames natively.
var codecPayloads = map[string]struct {
	hex   string
	fport int
}{
	"elsys-ers-co2":       {"0100e202290400270506060308", 1},
	"dragino-lht65":       {"cbf60b0d0376010add7fff", 2},
	"milesight-em310-udl": {"01755c03824408040001", 85},
	"decentlab-dl-pm":     {"021b50000f0c25002500270027002701f50107012c012d012d012d67bd618dbd10", 1},
}

// codecFile is one codec of the scripts folder: its model (the file's
// name) and the model of the test codec it copies.
type codecFile struct{ model, base string }

// codecDevice is one device of the uplink phase: one per codec.
type codecDevice struct {
	eui     devices.EUI
	model   string // the codec's (with scripts) or its base model (without)
	payload []byte
	fport   int
	fcnt    int
}

// codecFleet is a device per codec, the codec's model when withCodecs,
// else the built-in model of the same frames.
func codecFleet(files []codecFile, withCodecs bool) ([]codecDevice, error) {
	out := make([]codecDevice, len(files))
	for i, f := range files {
		p, ok := codecPayloads[f.base]
		if !ok {
			return nil, fmt.Errorf("codec %s copies %s, for which the benchmark has no uplink: use -codecs testdata/codecs, or -uplinks=false", f.model, f.base)
		}
		b, _ := hex.DecodeString(p.hex)
		d := codecDevice{model: f.base, payload: b, fport: p.fport}
		if withCodecs {
			d.model = f.model
		}
		binary.BigEndian.PutUint64(d.eui[:], 0x70b3d57ee0000000|uint64(i))
		out[i] = d
	}
	return out, nil
}

// writeDevicesCSV writes the fleet as a devices file (devices.import).
func writeDevicesCSV(path string, fleet []codecDevice) error {
	devs := make([]devices.Device, len(fleet))
	for i, d := range fleet {
		devs[i] = devices.Device{EUI: d.eui, Name: fmt.Sprintf("codec-%03d", i), Model: d.model}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := devices.WriteCSV(f, devs); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// uplinkPhase drives a started daemon: rounds of one uplink from every
// device, in a new random order each, each round waited for in
// InfluxDB, until every codec has decoded in every worker (the daemon's
// sensorgate_codec_worker_codecs) and at least warm rounds have passed;
// then measured more rounds, whose CPU per uplink it reports.
type uplinkPhase struct {
	fleet          []codecDevice
	warm, measured int // rounds
	maxRounds      int
	rng            *rand.Rand
	base           time.Time // the first uplink's time; one ms apart
	sent           int
	logged         int // dead letters logged
}

// codecUse is what the uplink phase found.
type codecUse struct {
	Rounds    int     // rounds until every codec had run in every worker (or warm)
	Uplinks   int     // published in all
	CPUPerUp  float64 // µs of CPU (daemon and workers) per measured uplink
	DaemonCPU float64 // of which the daemon's own
	InInflux  int     // uplink points in InfluxDB at the end
	Dead      int     // dead letters at the end
	PerWorker []workerHeld
}

// workerHeld is one worker's line of sensorgate_codec_worker_codecs.
type workerHeld struct{ Compiled, Run int }

func (u *uplinkPhase) run(ctx context.Context, h *harness, d *fleetDaemon, db *testserver.InfluxDB, broker, state string, withCodecs bool, n int, log io.Writer) (codecUse, error) {
	var res codecUse
	c := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID("codecs-bench-publisher").
		SetCleanSession(true).SetConnectTimeout(10 * time.Second).SetOrderMatters(false))
	if err := waitToken(ctx, c.Connect()); err != nil {
		return res, fmt.Errorf("bench: publisher: %w", err)
	}
	defer c.Disconnect(100)
	round := func() error {
		order := u.rng.Perm(len(u.fleet))
		toks := make([]paho.Token, 0, len(order))
		for _, i := range order {
			topic, payload := u.message(i)
			toks = append(toks, c.Publish(topic, 1, false, payload))
		}
		for _, t := range toks {
			if err := waitToken(ctx, t); err != nil {
				return fmt.Errorf("bench: publish: %w", err)
			}
		}
		return u.waitInflux(ctx, h, d, db, state, log)
	}
	for {
		if err := round(); err != nil {
			return res, err
		}
		res.Rounds++
		held, err := workerCodecs(d)
		if err != nil {
			return res, err
		}
		res.PerWorker = held
		covered := !withCodecs || len(held) == codecWorkers
		for _, w := range held {
			covered = covered && w.Run >= n
		}
		if res.Rounds >= u.warm && covered {
			break
		}
		if res.Rounds >= u.maxRounds {
			return res, fmt.Errorf("bench: after %d rounds not every codec has run in every worker: %+v", res.Rounds, held)
		}
	}
	fmt.Fprintf(log, "  every codec run in every worker after %d rounds: %+v\n", res.Rounds, res.PerWorker)
	cpu0, own0, err := daemonCPU(d.p.pid())
	if err != nil {
		return res, err
	}
	for range u.measured {
		if err := round(); err != nil {
			return res, err
		}
	}
	cpu1, own1, err := daemonCPU(d.p.pid())
	if err != nil {
		return res, err
	}
	res.CPUPerUp = (cpu1 - cpu0) / float64(u.measured*len(u.fleet)) * 1e6
	res.DaemonCPU = (own1 - own0) / float64(u.measured*len(u.fleet)) * 1e6
	res.Uplinks = u.sent
	res.InInflux = u.count(h, db)
	res.Dead = len(u.deadLetters(state, log))
	return res, nil
}

// deadLetters reads the run's dead letters, logging those not seen yet
// with their reason.
func (u *uplinkPhase) deadLetters(state string, log io.Writer) []gateway.DeadLetter {
	dls, _ := deadletter.ReadAll(filepath.Join(state, deadletter.FileName))
	for _, l := range dls[min(u.logged, len(dls)):] {
		fmt.Fprintf(log, "  dead letter: %s %s: %s\n", l.DevEUI, l.Reason, l.Detail)
	}
	u.logged = max(u.logged, len(dls))
	return dls
}

// message is device i's next uplink, ChirpStack v4 as the daemon's
// source reads it.
func (u *uplinkPhase) message(i int) (string, []byte) {
	d := &u.fleet[i]
	d.fcnt++
	t := u.base.Add(time.Duration(u.sent) * time.Millisecond)
	u.sent++
	eui := d.eui.String()
	msg := map[string]any{
		"deduplicationId": fmt.Sprintf("codecs-%s-%d", eui, d.fcnt),
		"time":            t.Format(time.RFC3339Nano),
		"deviceInfo":      map[string]any{"deviceName": fmt.Sprintf("codec-%03d", i), "devEui": eui},
		"fCnt":            d.fcnt, "fPort": d.fport,
		"data":   base64.StdEncoding.EncodeToString(d.payload),
		"rxInfo": []map[string]any{{"gatewayId": "b827ebfffe000001", "rssi": -80, "snr": 7.5, "time": t.Format(time.RFC3339Nano)}},
	}
	b, _ := json.Marshal(msg)
	return "application/codecs/device/" + eui + "/event/up", b
}

// count is the run's uplink points in InfluxDB: those from base on (a
// run's window of milliseconds, apart from every other run's).
func (u *uplinkPhase) count(h *harness, db *testserver.InfluxDB) int {
	return sumCounts(db.Query(h, fmt.Sprintf(`SELECT count("f_cnt") FROM "uplink" WHERE time >= %d AND time < %d`,
		u.base.UnixNano(), u.base.Add(time.Duration(u.sent+1)*time.Millisecond).UnixNano())))
}

// waitInflux waits until every uplink sent is in InfluxDB or the
// dead-letter store (a codec's failure, a timeout on a loaded machine:
// the end table counts them).
func (u *uplinkPhase) waitInflux(ctx context.Context, h *harness, d *fleetDaemon, db *testserver.InfluxDB, state string, log io.Writer) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got := u.count(h, db)
		if got >= u.sent {
			return nil
		}
		dead := len(u.deadLetters(state, log))
		if got+dead >= u.sent {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: InfluxDB holds %d of %d uplinks after 2 minutes (%d dead letters); see %s", got, u.sent, dead, d.p.logPath)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-d.p.exited:
			return fmt.Errorf("bench: sensorgate exited; see %s", d.p.logPath)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

var heldLine = regexp.MustCompile(`^sensorgate_codec_worker_codecs\{(.*)\} (\S+)$`)

// workerCodecs reads sensorgate_codec_worker_codecs from /metrics, by
// worker slot.
func workerCodecs(d *fleetDaemon) ([]workerHeld, error) {
	req, err := http.NewRequest(http.MethodGet, d.base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+fleetToken)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("bench: metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("bench: metrics: %s", resp.Status)
	}
	var out []workerHeld
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		m := heldLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		labels := map[string]string{}
		for _, kv := range strings.Split(m[1], ",") {
			k, v, _ := strings.Cut(kv, "=")
			labels[k] = strings.Trim(v, `"`)
		}
		slot, err1 := strconv.Atoi(labels["worker"])
		v, err2 := strconv.ParseFloat(m[2], 64)
		if err1 != nil || err2 != nil || slot < 0 || slot > 64 {
			return nil, fmt.Errorf("bench: metrics: unexpected line %q", sc.Text())
		}
		for len(out) <= slot {
			out = append(out, workerHeld{})
		}
		switch labels["state"] {
		case "compiled":
			out[slot].Compiled = int(v)
		case "run":
			out[slot].Run = int(v)
		}
	}
	return out, sc.Err()
}

// pssKiB reads Pss from /proc/PID/smaps_rollup: the process's resident
// memory with each page shared by k processes counted 1/k (the binary's
// pages the workers share with the daemon count once over the three).
func pssKiB(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			return strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
		}
	}
	return 0, fmt.Errorf("no Pss in /proc/%d/smaps_rollup", pid)
}

// daemonCPU is the CPU seconds of the daemon with its codec workers, and
// of the daemon alone.
func daemonCPU(pid int) (tree, own float64, err error) {
	if tree, err = treeCPUSeconds(pid); err != nil {
		return 0, 0, err
	}
	own, err = cpuSeconds(pid)
	return tree, own, err
}
