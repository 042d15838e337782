package script

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sensorgate/sensorgate/decoders"
)

// modelID is what a codec file name must be before ".js": a model id as
// the built-in table spells them (lower-case, digits, '-' and '_'), since
// it becomes the model tag and part of a measurement name.
var modelID = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// codecFile reports whether a folder entry is a codec file, and its model
// id. Hidden files are left alone: editors and the import command write
// their temporary files as ".name", and a half-written file must not be
// loaded.
func codecFile(name string) (model string, ok bool) {
	if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".js") {
		return "", false
	}
	return strings.TrimSuffix(name, ".js"), true
}

func checkModelID(name, model string) error {
	if !modelID.MatchString(model) {
		return loadErr(nil, "script: codec file %s: %q is not a model id (lower-case letters, digits, '-', '_'): rename the file to <model-id>.js", name, model)
	}
	return nil
}

// Load compiles every <model-id>.js file in dir at once, without a
// registry; the daemon uses a Watcher, the decode command
// Watcher.LoadModel. Files that fail are left out and reported together
// in the error; the others are returned.
func Load(dir string, opts Options) (map[string]*Codec, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("script: codecs folder: %w: create it or fix decoders.scripts", err)
	}
	codecs := map[string]*Codec{}
	var errs []error
	for _, ent := range entries {
		model, ok := codecFile(ent.Name())
		if !ok || ent.IsDir() {
			continue
		}
		if err := checkModelID(ent.Name(), model); err != nil {
			errs = append(errs, err)
			continue
		}
		c, err := LoadFile(filepath.Join(dir, ent.Name()), opts)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		codecs[model] = c
	}
	return codecs, errors.Join(errs...)
}

// Watcher keeps the codecs of one folder registered in a decoders.Registry
// and follows changes to the folder while the daemon runs.
//
// It polls file identity, modification time and size (Options.PollInterval, 2 s by
// default) rather than using inotify: polling needs no extra dependency,
// sees changes on network and bind mounts and in Kubernetes ConfigMap
// volumes (where files change by a symlink swap that inotify watches on
// the files miss), handles editors that save by rename, and a couple of
// seconds' delay is nothing for a codec fix. A file whose identity, time
// or size changed, or whose time was too recent to trust (see racyWindow),
// is read and hashed; it is compiled only if its content changed, and a
// version that does not load is reported once.
type Watcher struct {
	dir  string
	reg  *decoders.Registry
	opts Options

	mu    sync.Mutex // serialises Sync
	files map[string]*watched
	// compile turns a file version into its decoder: Compile, or what
	// LoadWith set.
	compile func(name string, src []byte) (Loaded, error)
}

// Loaded is a codec file ready to decode: a *Codec, or a codec run
// elsewhere (the daemon runs them in worker processes, decoders/sandbox).
type Loaded interface {
	decoders.Decoder
	Style() Style
	HasNormalize() bool
}

// LoadWith makes the Watcher turn codec files into decoders with load
// instead of Compile; load must fail as Compile does for a file that does
// not load. Call it before the first Sync.
func (w *Watcher) LoadWith(load func(name string, src []byte) (Loaded, error)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.compile = load
}

// watched is what the Watcher knows of one model's file.
type watched struct {
	info    os.FileInfo       // version last looked at; nil: look again
	sum     [sha256.Size]byte // content of the version last looked at
	codec   Loaded            // registered; nil when no version ever loaded
	failed  bool              // the version last looked at did not load
	lastErr string            // reported already; not again while it persists
}

// NewWatcher returns a Watcher of dir that registers codecs in reg. Call
// Sync to load the folder before the feeds start, then Run.
func NewWatcher(dir string, reg *decoders.Registry, opts Options) *Watcher {
	w := &Watcher{dir: dir, reg: reg, opts: opts.withDefaults(), files: map[string]*watched{}}
	w.compile = func(name string, src []byte) (Loaded, error) {
		c, err := Compile(name, src, w.opts)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	return w
}

// Sync brings the registry in line with the folder once: new and changed
// files are compiled and registered, removed files unregistered (the
// built-in decoder of that model, if any, takes over again). A file that
// does not load is logged as an error and not registered; the version
// before it, if there was one, stays. The error joins the problems found
// in this pass (a file that keeps failing is reported once); the codecs
// that loaded are registered regardless.
func (w *Watcher) Sync(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	log := w.opts.Logger
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		// A folder that is briefly gone (a remount, a redeploy) must not
		// unregister every codec: keep what is loaded.
		return fmt.Errorf("script: codecs folder: %w: create it or fix decoders.scripts", err)
	}
	var errs []error
	seen := make(map[string]bool, len(entries))
	for _, ent := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		model, ok := codecFile(ent.Name())
		if !ok {
			continue
		}
		// Stat, not the entry's Lstat: in a Kubernetes ConfigMap volume
		// the file is a symlink that never changes while its target does.
		path := filepath.Join(w.dir, ent.Name())
		info, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since ReadDir, or a dangling symlink
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("script: codec file %s: %w", ent.Name(), err))
			continue
		}
		if info.IsDir() {
			continue
		}
		seen[model] = true
		st := w.files[model]
		if st == nil {
			st = &watched{}
			w.files[model] = st
		}
		if unchanged(st.info, info) {
			continue
		}
		st.info = info
		if time.Since(info.ModTime()) < racyWindow {
			st.info = nil
		}
		err = w.load(st, model, ent.Name(), path)
		if err == nil {
			st.lastErr = ""
			continue
		}
		if msg := err.Error(); msg != st.lastErr {
			st.lastErr = msg
			ev := log.Error().Err(err).Str("codec", path).Str("model", model)
			if st.codec != nil {
				ev.Msg("codec file does not load; the previous version stays in use")
			} else {
				ev.Msg("codec file does not load; the model has no script codec until it is fixed")
			}
			errs = append(errs, err)
		}
	}
	for model, st := range w.files {
		if seen[model] {
			continue
		}
		if st.codec != nil {
			w.reg.Set(model, nil)
			log.Info().Str("model", model).Str("dir", w.dir).Msg("codec file removed; unregistered (a built-in decoder of this model, if any, is used again)")
		}
		delete(w.files, model)
	}
	return errors.Join(errs...)
}

// LoadModel loads the codec file of one model, <dir>/<model>.js, into the
// registry as Sync does for every file of the folder, for a one-off
// lookup (the decode command) that should not compile a whole folder of
// codecs. It returns the file's path, "" when the model has none (the
// registry's built-in decoder, if any, stands), and why the file does not
// load.
func (w *Watcher) LoadModel(model string) (path string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	name := model + ".js"
	if _, ok := codecFile(name); !ok {
		return "", nil
	}
	path = filepath.Join(w.dir, name)
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("script: codec file %s: %w", name, err)
	case info.IsDir():
		return "", nil
	}
	st := w.files[model]
	if st == nil {
		st = &watched{}
		w.files[model] = st
	}
	st.info = info
	return path, w.load(st, model, name, path)
}

// load reads, compiles and registers one file version.
func (w *Watcher) load(st *watched, model, name, path string) error {
	src, err := os.ReadFile(path)
	if err != nil {
		st.info = nil // try again next time: a chmod that fixes it changes no mtime
		return fmt.Errorf("script: read codec: %w: make it readable by sensorgate", err)
	}
	sum := sha256.Sum256(src)
	if sum == st.sum && (st.codec != nil || st.failed) {
		return nil // touched, or re-read within racyWindow: already dealt with
	}
	st.sum = sum
	if err := checkModelID(name, model); err != nil {
		st.failed = true
		return err
	}
	c, err := w.compile(name, src)
	if err != nil {
		st.failed = true
		return err
	}
	verb := "codec loaded"
	if st.codec != nil {
		verb = "codec reloaded"
	}
	w.reg.Set(model, c)
	st.codec, st.failed = c, false
	w.opts.Logger.Info().Str("codec", path).Str("model", model).Stringer("style", c.Style()).
		Bool("normalize", c.HasNormalize()).Msg(verb)
	return nil
}

// racyWindow: file times have the kernel's coarse clock (a few ms), so a
// file rewritten with the same size within that tick of the version just
// read would look unchanged. A file modified this recently is therefore
// read (and hashed, not recompiled) again on the next poll.
const racyWindow = 2 * time.Second

// unchanged reports whether a file is the version last looked at: the same
// file (a replace by rename makes a new one), time and size.
func unchanged(was, now os.FileInfo) bool {
	return was != nil && os.SameFile(was, now) && was.ModTime().Equal(now.ModTime()) && was.Size() == now.Size()
}

// Models lists the models whose script codec is registered, sorted.
func (w *Watcher) Models() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for m, st := range w.files {
		if st.codec != nil {
			out = append(out, m)
		}
	}
	sort.Strings(out)
	return out
}

// Run syncs the folder every Options.PollInterval until ctx is cancelled,
// then returns nil: cancellation is shutdown, not a failure. Problems are
// logged by Sync; a missing folder is logged each time it is noticed
// missing, not on every poll.
func (w *Watcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.opts.PollInterval)
	defer t.Stop()
	dirDown := false
	for {
		err := w.Sync(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var pe *fs.PathError
		if errors.As(err, &pe) && pe.Path == w.dir {
			if !dirDown {
				w.opts.Logger.Error().Err(err).Msg("codecs folder unreadable; the codecs already loaded stay in use")
			}
			dirDown = true
		} else if dirDown {
			w.opts.Logger.Info().Str("dir", w.dir).Msg("codecs folder readable again")
			dirDown = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
