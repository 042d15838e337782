package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
)

var t0 = time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)

func openTemp(t *testing.T) (*File, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestListFiltersAndMarks(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	for i, dl := range []gateway.DeadLetter{
		{Time: t0, Source: "cs", DevEUI: "0101010101010101", Reason: gateway.ReasonDecode, Detail: "short", Raw: []byte("a")},
		{Time: t0.Add(time.Hour), Source: "tts", Reason: gateway.ReasonMalformed, Detail: "json", Raw: []byte("b")},
		{Time: t0.Add(2 * time.Hour), Source: "cs", DevEUI: "0202020202020202", Reason: gateway.ReasonDecode, Detail: "short", Raw: []byte("c")},
	} {
		if err := s.Put(ctx, dl); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	if err := s.mark(ctx, 1, StatusFailed, t0.Add(3*time.Hour), gateway.ReasonUnknownModel, "still"); err != nil {
		t.Fatal(err)
	}
	if err := s.mark(ctx, 3, StatusReplayed, t0.Add(3*time.Hour), "", ""); err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	tests := []struct {
		name string
		f    Filter
		ids  []uint64
	}{
		{"all", Filter{}, []uint64{1, 2, 3}},
		{"reason", Filter{Reason: gateway.ReasonDecode}, []uint64{1, 3}},
		{"since", Filter{Since: t0.Add(time.Hour)}, []uint64{2, 3}},
		{"until", Filter{Until: t0.Add(time.Hour)}, []uint64{1}},
		{"source", Filter{Source: "tts"}, []uint64{2}},
		{"device", Filter{DevEUI: "0202020202020202"}, []uint64{3}},
		{"replayed", Filter{Replayed: &yes}, []uint64{3}},
		{"not replayed", Filter{Replayed: &no}, []uint64{1, 2}},
		{"ids", Filter{IDs: []uint64{2, 3, 9}}, []uint64{2, 3}},
		{"limit", Filter{Limit: 2}, []uint64{1, 2}},
		{"newest", Filter{Newest: true, Limit: 2}, []uint64{3, 2}},
		{"newest filtered", Filter{Newest: true, Reason: gateway.ReasonDecode}, []uint64{3, 1}},
		{"after", Filter{After: 1}, []uint64{2, 3}},
		{"ids newest", Filter{IDs: []uint64{1, 3}, Newest: true}, []uint64{3, 1}},
	}
	for _, tc := range tests {
		got, err := s.List(ctx, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		var ids []uint64
		for _, l := range got {
			ids = append(ids, l.ID)
		}
		if !equalIDs(ids, tc.ids) {
			t.Errorf("%s: ids %v, want %v", tc.name, ids, tc.ids)
		}
	}
	l, ok, _ := s.Get(ctx, 1)
	if !ok || l.Attempts != 1 || l.LastError != "unknown_model: still" || l.ReplayedAt != nil || string(l.Raw) != "a" {
		t.Errorf("letter 1: %+v", l)
	}
	// ReadAll still returns the letters alone.
	if all, err := ReadAll(path); err != nil || len(all) != 3 {
		t.Fatalf("ReadAll: %d letters, %v", len(all), err)
	}
}

func equalIDs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// replayFixture is a pipeline whose only device names a model the
// decoder table lacks until fixed.
type replayFixture struct {
	decs  map[string]decoders.Decoder
	sink  *memSink
	store *File
	r     *Replayer
}

type decoderTable map[string]decoders.Decoder

func (t decoderTable) Lookup(m string) (decoders.Decoder, bool) { d, ok := t[m]; return d, ok }

type memSink struct {
	mu   sync.Mutex
	pts  []gateway.Point
	fail error
}

func (m *memSink) Write(_ context.Context, pts []gateway.Point) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	// A Sink must not retain the points it is given: copy them.
	for _, p := range pts {
		p.Tags, p.Fields = slices.Clone(p.Tags), slices.Clone(p.Fields)
		m.pts = append(m.pts, p)
	}
	return nil
}

type rawMsg struct {
	DevEUI string `json:"dev_eui"`
	FCnt   uint32 `json:"f_cnt"`
	Data   []byte `json:"data"`
}

func newReplayFixture(t *testing.T) *replayFixture {
	eui, _ := devices.ParseEUI("0101010101010101")
	reg, err := devices.NewRegistry([]devices.Device{{EUI: eui, Name: "probe", Model: "temp"}})
	if err != nil {
		t.Fatal(err)
	}
	f := &replayFixture{decs: decoderTable{}, sink: &memSink{}}
	f.store, _ = openTemp(t)
	p := &gateway.Pipeline{Devices: reg, Decoders: decoderTable(f.decs), Sink: f.sink, DeadLetters: f.store, Counters: &gateway.Counters{},
		Sources: map[string]gateway.SourcePolicy{"feed": {}}}
	f.r = &Replayer{Store: f.store, Pipeline: p, Now: func() time.Time { return t0.Add(time.Hour) },
		Parse: func(dl gateway.DeadLetter) (gateway.Uplink, error) {
			if dl.Source != "feed" {
				return gateway.Uplink{}, ErrNoParser
			}
			var m rawMsg
			if err := json.Unmarshal(dl.Raw, &m); err != nil {
				return gateway.Uplink{}, err
			}
			e, err := devices.ParseEUI(m.DevEUI)
			return gateway.Uplink{Source: dl.Source, DevEUI: e, FCnt: m.FCnt, HasFCnt: true, FPort: 1, HasFPort: true,
				Payload: m.Data, Time: t0, Raw: dl.Raw}, err
		}}
	return f
}

func TestReplay(t *testing.T) {
	ctx := context.Background()
	f := newReplayFixture(t)
	raw, _ := json.Marshal(rawMsg{DevEUI: "0101010101010101", FCnt: 7, Data: []byte{0x01, 0x02}})
	// The message arrives while the model is missing: a dead letter.
	p := f.r.Pipeline
	up, _ := f.r.Parse(gateway.DeadLetter{Source: "feed", Raw: raw})
	if err := p.Handle(ctx, up); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Put(ctx, gateway.DeadLetter{Time: t0, Source: "gone", Reason: gateway.ReasonMalformed, Raw: []byte("?")}); err != nil {
		t.Fatal(err)
	}
	// Replay before the fix: failed, and no second dead letter.
	res, err := f.r.Replay(ctx, Filter{}, false)
	if err != nil || len(res) != 2 || res[0].Status != StatusFailed || res[0].Reason != gateway.ReasonUnknownModel ||
		res[1].Status != StatusFailed || !strings.Contains(res[1].Detail, "no parser") {
		t.Fatalf("replay before fix: %+v %v", res, err)
	}
	if all, _ := f.store.List(ctx, Filter{}); len(all) != 2 {
		t.Fatalf("a failed replay added dead letters: %d", len(all))
	}
	// Counted as failed replays, not as new dead letters or uplinks.
	counts := func(when string, want map[string]uint64) {
		t.Helper()
		for name, w := range want {
			if got := p.Counters.Get(name); got != w {
				t.Errorf("%s: counter %s = %d, want %d (%v)", when, name, got, w, p.Counters.Snapshot())
			}
		}
	}
	counts("after the failed replay", map[string]uint64{"dead_letters.unknown_model": 1, "uplinks": 1, EventReplayFailed: 2, EventReplayed: 0})

	// Fix the decoder, replay: points; again: skipped; forced: the same points.
	f.decs["temp"] = decoders.Mapped{DecodeRecord: func(in decoders.Input, r *decoders.Record) error {
		r.Number("t", float64(in.Bytes[1]))
		return nil
	}}
	res, err = f.r.Replay(ctx, Filter{Reason: gateway.ReasonUnknownModel}, false)
	if err != nil || len(res) != 1 || res[0].Status != StatusReplayed || res[0].Points == 0 {
		t.Fatalf("replay after fix: %+v %v", res, err)
	}
	counts("after the replay", map[string]uint64{"dead_letters.unknown_model": 1, "uplinks": 1, "points_written": 0, EventReplayFailed: 2, EventReplayed: 1})
	first := len(f.sink.pts)
	res, _ = f.r.Replay(ctx, Filter{Reason: gateway.ReasonUnknownModel}, false)
	if res[0].Status != StatusSkipped || len(f.sink.pts) != first {
		t.Fatalf("second replay: %+v", res)
	}
	if _, err := f.r.Replay(ctx, Filter{Reason: gateway.ReasonUnknownModel}, true); err != nil {
		t.Fatal(err)
	}
	if len(f.sink.pts) != 2*first {
		t.Fatalf("forced replay wrote %d points, want %d", len(f.sink.pts)-first, first)
	}
	for i := 0; i < first; i++ {
		a, b := f.sink.pts[i], f.sink.pts[first+i]
		if a.Measurement != b.Measurement || !a.Time.Equal(b.Time) || len(a.Fields) != len(b.Fields) {
			t.Fatalf("replays differ: %+v vs %+v", a, b)
		}
	}
	l, _, _ := f.store.Get(ctx, 1)
	if l.ReplayedAt == nil || l.Attempts != 3 || l.LastError != "" {
		t.Fatalf("letter 1 after replays: %+v", l)
	}

	// The sink down: the replay stops with an error and marks nothing.
	f.sink.fail = errors.New("disk full")
	if _, err := f.r.Replay(ctx, Filter{IDs: []uint64{1}}, true); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("sink down: %v", err)
	}
	if l2, _, _ := f.store.Get(ctx, 1); l2.Attempts != l.Attempts {
		t.Fatal("a replay that did not happen was marked")
	}
}

func TestReplayResendsRejectedLines(t *testing.T) {
	ctx := context.Background()
	f := newReplayFixture(t)
	if err := f.store.Put(ctx, gateway.DeadLetter{Time: t0, Source: "feed", Reason: gateway.ReasonRejected, Raw: []byte("m f=1 1\n")}); err != nil {
		t.Fatal(err)
	}
	res, _ := f.r.Replay(ctx, Filter{}, false)
	if res[0].Status != StatusFailed {
		t.Fatalf("without Resend: %+v", res)
	}
	var sent []byte
	f.r.Resend = func(_ context.Context, b []byte) error { sent = b; return nil }
	res, _ = f.r.Replay(ctx, Filter{}, false)
	if res[0].Status != StatusReplayed || string(sent) != "m f=1 1\n" {
		t.Fatalf("with Resend: %+v %q", res, sent)
	}
}
