package ttsstorage

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// CursorFile is the cursors' file name under state_dir.
const CursorFile = "tts-storage.json"

// Margin is how far before its cursor a source's backfill starts. The
// cursor follows the uplinks' network-server times, which the Storage
// Integration's received_at never precedes; the margin covers uplinks of
// other devices still in flight when the newest was taken, and clocks a
// little apart. Fetching a minute twice costs nothing but requests: the
// points are idempotent.
const Margin = time.Minute

// Cursors keeps, per source with a storage setting, the time from which
// stored uplinks may still be missing: the newest uplink taken live,
// unless a backfill is under way or failed, which holds it at the oldest
// uplink not yet fetched. It is saved in one small JSON file (one entry
// per configured source: bounded) and read back at start, so a restart
// resumes where the last run stopped.
type Cursors struct {
	path string
	mu   sync.Mutex
	m    map[string]*cursor
	// saved is false when something changed since the last Save.
	saved bool
}

type cursor struct {
	app  string
	live time.Time // newest uplink taken live (or the first connection)
	// hole, when set, is the oldest time uplinks may be missing from:
	// set at a connection, moved by the backfill's progress, cleared when
	// it finished.
	hole *time.Time
	// again, when set, is where a connection during a backfill left its
	// gap: the running backfill may end before it, so the next one
	// starts there.
	again *time.Time
}

// resume is where the next backfill starts: the earliest time uplinks may
// be missing from.
func (c *cursor) resume() time.Time {
	switch {
	case c.again != nil && (c.hole == nil || c.again.Before(*c.hole)):
		return *c.again
	case c.hole != nil:
		return *c.hole
	}
	return c.live
}

// cursorFile is the file's form.
type cursorFile struct {
	Version int                    `json:"version"`
	Sources map[string]cursorEntry `json:"sources"`
}

type cursorEntry struct {
	ApplicationID string    `json:"application_id"`
	Resume        time.Time `json:"resume"`
}

// OpenCursors reads the cursors file at path (none yet: every source
// starts without a cursor) for the sources given as name → application
// id. Entries of other sources, or of a source now configured with
// another application, are dropped.
func OpenCursors(path string, sources map[string]string) (*Cursors, error) {
	c := &Cursors{path: path, m: make(map[string]*cursor, len(sources)), saved: true}
	for name, app := range sources {
		c.m[name] = &cursor{app: app}
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read backfill cursors: %w", err)
	}
	var f cursorFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("backfill cursors %s: %w: delete the file to start afresh (the next connection then fetches nothing older; sensorgate backfill --source S --since T fetches a range by hand)", path, err)
	}
	for name, e := range f.Sources {
		if cur, ok := c.m[name]; ok && cur.app == e.ApplicationID {
			cur.live = e.Resume.UTC()
		} else {
			c.saved = false // drop it from the file too
		}
	}
	return c, nil
}

// Resume is where source's next backfill starts; zero when it has none.
func (c *Cursors) Resume(source string) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.m[source]; ok {
		return cur.resume()
	}
	return time.Time{}
}

// Seen records an uplink of source taken live at t (its network-server time).
func (c *Cursors) Seen(source string, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.m[source]; ok && t.After(cur.live) {
		cur.live = t
		if cur.hole == nil {
			c.saved = false
		}
	}
}

// Begin marks a connection of source at now and returns where its
// backfill starts, or ok false when the source has no cursor yet (its
// first connection ever: it starts the record at now, and nothing older
// is fetched). Until Done, the saved cursor stays there however many
// uplinks arrive live.
func (c *Cursors) Begin(source string, now time.Time) (from time.Time, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, known := c.m[source]
	if !known {
		return time.Time{}, false
	}
	if cur.hole != nil {
		// A backfill is under way or failed: this connection's gap starts
		// at the newest uplink taken, which that backfill may never reach
		// (it may have fetched up to before it); the next one covers it.
		if cur.again == nil || cur.live.Before(*cur.again) {
			a := cur.live
			cur.again = &a
		}
		return cur.resume(), true
	}
	if cur.live.IsZero() {
		cur.live = now.UTC()
		c.saved = false
		return time.Time{}, false
	}
	h := cur.live
	cur.hole = &h
	return h, true
}

// Progress moves source's hole to t: everything stored up to t is durable.
func (c *Cursors) Progress(source string, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.m[source]; ok && cur.hole != nil && t.After(*cur.hole) {
		*cur.hole = t
		c.saved = false
	}
}

// Done ends source's backfill: nothing before the time it reached is
// missing any more, and nothing at all unless a connection during it left
// a gap of its own (then Resume is that gap, for the next backfill).
func (c *Cursors) Done(source string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, ok := c.m[source]
	if !ok || cur.hole == nil {
		return
	}
	c.saved = false
	if cur.hole.After(cur.live) {
		cur.live = *cur.hole
	}
	cur.hole, cur.again = cur.again, nil
}

// Save writes the cursors if they changed: to a new file, synced, then
// renamed over the old one, so a crash leaves the old or the new file.
func (c *Cursors) Save() error {
	c.mu.Lock()
	if c.saved {
		c.mu.Unlock()
		return nil
	}
	f := cursorFile{Version: 1, Sources: make(map[string]cursorEntry, len(c.m))}
	for name, cur := range c.m {
		if r := cur.resume(); !r.IsZero() {
			f.Sources[name] = cursorEntry{ApplicationID: cur.app, Resume: r}
		}
	}
	c.saved = true
	c.mu.Unlock()
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileSync(c.path, append(b, '\n')); err != nil {
		c.mu.Lock()
		c.saved = false
		c.mu.Unlock()
		return fmt.Errorf("save backfill cursors: %w", err)
	}
	return nil
}

// writeFileSync replaces path with b durably.
func writeFileSync(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename there is nothing to remove
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
