package spool

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

const (
	helperDirEnv   = "SPOOL_HELPER_DIR"
	helperRoundEnv = "SPOOL_HELPER_ROUND"
	helperWriters  = 8
)

// crashConfig is shared by the child and the parent: small segments, so
// kills land around rotations too.
func crashConfig(dir string) Config {
	return Config{Dir: dir, SegmentBytes: 32 << 10, MaxBytes: 1 << 30}
}

// crashKey identifies a record the child appended.
type crashKey struct{ round, writer, i int }

// crashPayload is the record for k: its key, then filler of a size that
// varies with the key, so writes of many sizes get torn.
func crashPayload(k crashKey) []byte {
	p := fmt.Appendf(nil, "%d %d %d |", k.round, k.writer, k.i)
	n := 20 + (k.i*37+k.writer*101)%1500
	for len(p) < n {
		p = append(p, byte('a'+len(p)%26))
	}
	return p
}

func parseCrashKey(b []byte) (crashKey, bool) {
	var k crashKey
	_, err := fmt.Sscanf(string(b), "%d %d %d", &k.round, &k.writer, &k.i)
	return k, err == nil
}

// TestHelperProcess is the child of TestKill9: it appends from several
// goroutines and prints each record's key once Append returned nil, until
// the parent kills it. Run on its own it does nothing.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	if dir == "" {
		t.Skip("child process of TestKill9")
	}
	round, _ := strconv.Atoi(os.Getenv(helperRoundEnv))
	s, err := Open(crashConfig(dir), zerolog.Nop())
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex // one write per line, so a kill never splits one
	var wg sync.WaitGroup
	for w := range helperWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				k := crashKey{round, w, i}
				if err := s.Append(context.Background(), crashPayload(k)); err != nil {
					fmt.Fprintln(os.Stderr, "child append:", err)
					os.Exit(3)
				}
				mu.Lock()
				os.Stdout.Write(fmt.Appendf(nil, "%d %d %d\n", k.round, k.writer, k.i))
				mu.Unlock()
			}
		}()
	}
	wg.Wait() // never: the parent kills the process
}

// TestKill9 kills a child mid-append with SIGKILL several times and
// checks after each kill that the spool opens cleanly and holds every
// record the child was told was stored, exactly once and in order, and
// that acks made between kills hold.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("SPOOL_KILL_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("seed %d (rerun with SPOOL_KILL_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir()

	reported := map[crashKey]bool{} // the child's Append returned nil
	acked := map[crashKey]bool{}    // the parent acked it
	const rounds = 6
	for round := range rounds {
		n := runAndKill(t, dir, round, time.Duration(rng.IntN(150))*time.Millisecond, reported)

		s, lb := openT(t, crashConfig(dir))
		recs := drain(t, s, 500)
		seen := map[crashKey]bool{}
		lastI := map[[2]int]int{}
		for _, r := range recs {
			k, ok := parseCrashKey(r.Data)
			if !ok || string(r.Data) != string(crashPayload(k)) {
				t.Fatalf("round %d: record %d has foreign data %q", round, r.Pos, r.Data)
			}
			if seen[k] {
				t.Fatalf("round %d: record %v is in the spool twice", round, k)
			}
			if acked[k] {
				t.Fatalf("round %d: acked record %v came back", round, k)
			}
			seen[k] = true
			w := [2]int{k.round, k.writer}
			if prev, ok := lastI[w]; ok && k.i <= prev {
				t.Fatalf("round %d: writer %v: record %d after %d (out of order)", round, w, k.i, prev)
			}
			lastI[w] = k.i
		}
		for k := range reported {
			if !acked[k] && !seen[k] {
				t.Fatalf("round %d: record %v was acknowledged to the child but is missing after kill -9\nlog:\n%s", round, k, lb.String())
			}
		}
		t.Logf("round %d: child stored %d records before the kill; spool holds %d pending, repaired %d bytes",
			round, n, len(recs), s.Stats().RepairedBytes)

		// Deliver a random prefix; the rest must come back next round.
		if len(recs) > 0 {
			k := rng.IntN(len(recs) + 1)
			if k > 0 {
				if err := s.Ack(recs[k-1].Pos); err != nil {
					t.Fatal(err)
				}
				for _, r := range recs[:k] {
					key, _ := parseCrashKey(r.Data)
					acked[key] = true
				}
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// runAndKill starts the child, lets it append for a while after its first
// stored record, SIGKILLs it and adds what it reported to reported.
func runAndKill(t *testing.T, dir string, round int, after time.Duration, reported map[crashKey]bool) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperDirEnv+"="+dir, helperRoundEnv+"="+strconv.Itoa(round))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	first := make(chan struct{})
	lines := make(chan []crashKey, 1)
	go func() {
		var keys []crashKey
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if k, ok := parseCrashKey(sc.Bytes()); ok {
				if len(keys) == 0 {
					close(first)
				}
				keys = append(keys, k)
			}
		}
		lines <- keys
	}()
	select {
	case <-first:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("round %d: child stored nothing in 30s", round)
	}
	time.Sleep(after)
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	keys := <-lines
	cmd.Wait()
	for _, k := range keys {
		reported[k] = true
	}
	return len(keys)
}
