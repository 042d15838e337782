package testserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// WriteStats are the HTTP write statistics influxd keeps since it
// started (GET /debug/vars, "httpd"): what every client wrote to it,
// whichever API it used (/write or /api/v2/write).
type WriteStats struct {
	Requests int64 `json:"writeReq"`
	// Bytes is the line protocol received, after any gzip was undone.
	Bytes  int64 `json:"writeReqBytes"`
	Points int64 `json:"pointsWrittenOK"`
}

// WriteStats reads the server's write statistics. They restart from zero
// when the server does.
func (db *InfluxDB) WriteStats() (WriteStats, error) {
	resp, err := db.client.Get(db.URL() + "/debug/vars")
	if err != nil {
		return WriteStats{}, fmt.Errorf("influxd statistics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return WriteStats{}, fmt.Errorf("influxd statistics: %s", resp.Status)
	}
	var vars map[string]json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&vars); err != nil {
		return WriteStats{}, fmt.Errorf("influxd statistics: %w", err)
	}
	// The HTTP service's entry is keyed "httpd:<bind address>".
	for k, v := range vars {
		if k != "httpd" && !strings.HasPrefix(k, "httpd:") {
			continue
		}
		var httpd struct {
			Values WriteStats `json:"values"`
		}
		if err := json.Unmarshal(v, &httpd); err != nil {
			return WriteStats{}, fmt.Errorf("influxd statistics: %s: %w", k, err)
		}
		return httpd.Values, nil
	}
	return WriteStats{}, errors.New("influxd statistics: no httpd entry")
}

// CompactFully makes influxd compact the test database's shards fully and
// returns the bytes of their TSM files then: what the data costs on disk
// for as long as it is kept. influxd compacts a shard fully only once no
// write reached it for compact-full-write-cold-duration (4 h by default),
// so the server is restarted with that and the cache snapshot's cold
// duration at one second; it replays its WAL, snapshots the cache into
// TSM files and merges every shard's generations into one. CompactFully
// waits until each shard holds a single generation, the WAL is empty and
// nothing changed between two looks a second apart. The server keeps
// running with the short durations afterwards.
func (db *InfluxDB) CompactFully(timeout time.Duration) (int64, error) {
	if db.base != "" {
		return 0, errors.New("influxd: CompactFully needs a server this process started")
	}
	db.Stop()
	db.coldCompaction = true
	if err := os.WriteFile(db.conf, []byte(db.config()), 0o644); err != nil {
		return 0, fmt.Errorf("influxd: write config: %w", err)
	}
	if err := db.start(); err != nil {
		db.Stop()
		return 0, fmt.Errorf("influxd restart for compaction: %w; log:\n%s", err, db.Log())
	}
	deadline := time.Now().Add(timeout)
	var last diskState
	for {
		st, err := db.disk()
		if err != nil {
			return 0, err
		}
		if st.settled() && st == last {
			return st.tsmBytes, nil
		}
		last = st
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("influxd: shards not fully compacted after %s (%d generations in the busiest shard, %d WAL bytes)", timeout, st.maxGenerations, st.walBytes)
		}
		time.Sleep(time.Second)
	}
}

// diskState is what the test database holds on disk.
type diskState struct {
	tsmFiles, tsmBytes, walBytes int64
	maxGenerations               int  // most TSM generations of one shard
	compacting                   bool // a .tmp file: a compaction is writing
}

func (s diskState) settled() bool {
	return !s.compacting && s.maxGenerations <= 1 && s.walBytes == 0
}

// disk reads the database's data and WAL directories:
// data/<db>/<rp>/<shard>/<generation>-<sequence>.tsm and
// wal/<db>/<rp>/<shard>/_<n>.wal.
func (db *InfluxDB) disk() (diskState, error) {
	var st diskState
	gens := map[string]map[string]bool{} // shard dir → generations
	err := filepath.WalkDir(filepath.Join(db.Dir, "data", db.DB), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := d.Name()
		switch {
		case strings.HasSuffix(name, ".tmp"):
			st.compacting = true
		case strings.HasSuffix(name, ".tsm"):
			info, err := d.Info()
			if err != nil {
				return err
			}
			st.tsmFiles++
			st.tsmBytes += info.Size()
			shard := filepath.Dir(path)
			if gens[shard] == nil {
				gens[shard] = map[string]bool{}
			}
			gen, _, _ := strings.Cut(name, "-")
			gens[shard][gen] = true
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return st, fmt.Errorf("influxd data directory: %w", err)
	}
	for _, g := range gens {
		st.maxGenerations = max(st.maxGenerations, len(g))
	}
	err = filepath.WalkDir(filepath.Join(db.Dir, "wal", db.DB), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(d.Name(), ".wal") {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st.walBytes += info.Size()
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return st, fmt.Errorf("influxd WAL directory: %w", err)
	}
	return st, nil
}
