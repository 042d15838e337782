package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/gateway/deadletter"
	"github.com/sensorgate/sensorgate/internal/simulate"
)

// TestFaultDeadLetterStore (h): a flood of malformed messages mixed into
// a valid stream fills a dead-letter store capped at 1 MiB, and the
// daemon, a real process, is killed with SIGKILL in the middle of it and
// restarted. Then, with the daemon stopped, a run of garbage is spliced
// into the middle of the newest segment (what a write that failed part
// way leaves once the next letter is appended after it). After a second
// restart: every valid uplink landed, the files stayed within max_bytes
// (the oldest letters dropped and logged), the damaged record is skipped
// and logged, and listing and replay through the daemon's API (the CLI)
// answer: every letter left is listed and replayed.
func TestFaultDeadLetterStore(t *testing.T) {
	t.Parallel()
	const n, bad, maxBytes = 600, 1500, 1 << 20
	r := newFaultRig(t, 808, 50)
	cfgPath := r.writeConfig(rigConfig{extra: fmt.Sprintf("deadletters: {max_bytes: %d}\n", maxBytes)})
	p := r.startProcess(cfgPath)
	diag := func() string { return "log:\n" + r.logTail() }
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	want := expectSet{}
	valid := r.stream(n)
	want.add(valid...)
	rng := rand.New(rand.NewPCG(808, 1))
	msgs := slices.Clone(valid)
	for i := range bad {
		junk := make([]byte, 2048)
		for j := range junk {
			junk[j] = byte(rng.IntN(256))
		}
		m := simulate.Message{Topic: fmt.Sprintf("application/flood/device/%016x/event/up", i), Payload: junk}
		at := rng.IntN(len(msgs) + 1)
		msgs = slices.Insert(msgs, at, m)
	}
	published := make(chan error, 1)
	go func() { published <- publishReliably(ctx, r.mq.URL(), "faults-publisher", msgs, 3000, nil) }()
	waitFor(t, 2*time.Minute, "a third of the uplinks in before the kill",
		func() bool { return uplinksIn(t, r.db) >= n/3 }, diag)
	p.kill()
	p.start()
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	awaitUplinks(t, r.db, n, 2*time.Minute, diag)
	assertExactly(t, r.db, want)
	if err := p.terminate(); err != nil {
		t.Fatalf("sensorgate after SIGTERM: %v\n%s", err, diag())
	}

	store := filepath.Join(r.dir, "state", deadletter.FileName)
	if size := dirBytes(t, store); size > maxBytes {
		t.Fatalf("dead letters take %d bytes on disk, over deadletters.max_bytes %d", size, maxBytes)
	}
	if len(r.logLines("dead letters: oldest segment dropped to stay within deadletters.max_bytes")) == 0 {
		t.Fatalf("%d malformed messages of 2 KiB in 1 MiB and no segment dropped\n%s", bad, diag())
	}
	before, err := deadletter.ReadAll(store)
	if err != nil || len(before) < 10 {
		t.Fatalf("%d dead letters before the damage, %v; store: %s\n%s", len(before), err, lsDir(store), diag())
	}

	// The damage: garbage in the middle of the newest segment.
	segs, _ := filepath.Glob(filepath.Join(store, "*.dl"))
	slices.Sort(segs)
	newest := segs[len(segs)-1]
	b, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}
	mid := len(b) / 2
	b = slices.Insert(b, mid, bytes.Repeat([]byte{0xff, 'D', 'L', '1', 0x20, 0, 0, 0, 7}, 5)...)
	if err := os.WriteFile(newest, b, 0o640); err != nil {
		t.Fatal(err)
	}
	// The letter the garbage landed in is lost (none if it landed
	// between two); every other one reads as before.
	after, err := deadletter.ReadAll(store)
	if err != nil || len(after) < len(before)-1 || len(after) > len(before) {
		t.Fatalf("after the damage %d letters readable (%v), want %d or one fewer", len(after), err, len(before))
	}

	// Back with a new MQTT session: messages the full write queue refused
	// are still redelivered to the old one, and letters arriving now
	// would race the counts below.
	text, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	text = bytes.Replace(text, []byte("client_id: faults-cs4,"), []byte("client_id: faults-cs4-after,"), 1)
	if err := os.WriteFile(cfgPath, text, 0o644); err != nil {
		t.Fatal(err)
	}
	p.start()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the API to answer", func() bool {
		c, err := net.DialTimeout("tcp", cfg.HTTP.Listen, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, diag)
	if len(r.logLines("dead letters: damaged records skipped (torn writes or media damage); the others are kept")) == 0 {
		t.Errorf("the damaged record was not logged at open\n%s", diag())
	}
	cli := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if err := deadlettersCommand(ctx, append(args, "-c", cfgPath), &out, &errb); err != nil {
			t.Fatalf("sensorgate deadletters %v: %v\n%s\n%s", args, err, errb.String(), diag())
		}
		return out.String()
	}
	listed := func() []deadletter.Letter {
		var resp struct {
			DeadLetters []deadletter.Letter `json:"dead_letters"`
		}
		if err := json.Unmarshal([]byte(cli("list", "-limit", "0", "-json")), &resp); err != nil {
			t.Fatal(err)
		}
		return resp.DeadLetters
	}
	ls := listed()
	if len(ls) != len(after) {
		t.Fatalf("the API lists %d dead letters, %d are readable", len(ls), len(after))
	}
	if out := cli("list", "-limit", "5"); !strings.Contains(out, "5 dead letters") {
		t.Fatalf("list -limit 5:\n%s", out)
	}
	var out, errb bytes.Buffer
	err = deadlettersCommand(ctx, []string{"replay", "-reason", "malformed", "-c", cfgPath}, &out, &errb)
	if err == nil || !strings.Contains(out.String(), fmt.Sprintf("0 replayed, %d failed, 0 skipped", len(ls))) {
		t.Fatalf("replay of %d malformed letters: %v (want an error: every one fails again)\n%s", len(ls), err, lastLines(out.String(), 3))
	}
	for _, l := range listed() {
		if l.Attempts != 1 || l.LastError == "" {
			t.Fatalf("letter %d not marked by the replay: %+v", l.ID, l)
		}
	}
	if err := p.terminate(); err != nil {
		t.Fatalf("sensorgate after SIGTERM: %v\n%s", err, diag())
	}
	t.Logf("%d letters kept of %d malformed messages, %d bytes on disk", len(ls), bad, dirBytes(t, store))
}

func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range es {
		if fi, err := e.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// lsDir lists a directory's files and sizes, for failure messages.
func lsDir(dir string) string {
	es, _ := os.ReadDir(dir)
	var b strings.Builder
	for _, e := range es {
		if fi, err := e.Info(); err == nil {
			fmt.Fprintf(&b, "%s %d; ", e.Name(), fi.Size())
		}
	}
	return b.String()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
