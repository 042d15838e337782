package devices

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"testing"
	"time"
	"unsafe"
)

// TestStamp: a stamp keeps a time's instant to the nanosecond, the zero
// time included, and orders and subtracts as time.Time does.
func TestStamp(t *testing.T) {
	east := time.FixedZone("east", 2*3600)
	times := []time.Time{
		{},
		time.Unix(0, 0),
		time.Unix(-1, 999999999),
		time.Date(2026, 5, 4, 8, 0, 0, 123456789, time.UTC),
		time.Date(2026, 5, 4, 10, 0, 0, 1, east),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
	}
	for _, a := range times {
		got := stampOf(a).time()
		if !got.Equal(a) || got.IsZero() != a.IsZero() || stampOf(a).isZero() != a.IsZero() {
			t.Errorf("%v: back as %v", a, got)
		}
		if !a.IsZero() && got.Location() != time.UTC {
			t.Errorf("%v: back in %v, want UTC", a, got.Location())
		}
		for _, b := range times {
			if stampOf(a).before(stampOf(b)) != a.Before(b) {
				t.Errorf("%v before %v: %v", a, b, stampOf(a).before(stampOf(b)))
			}
			if d := a.Sub(b); d > -time.Hour && d < time.Hour && stampOf(a).sub(stampOf(b)) != d.Seconds() {
				t.Errorf("%v - %v = %v s, want %v", a, b, stampOf(a).sub(stampOf(b)), d.Seconds())
			}
		}
	}
}

// TestHealthRecordLayout: a health record holds nothing the collector
// would have to scan, and is a whole number of cache lines with an
// uplink's fields in the first.
func TestHealthRecordLayout(t *testing.T) {
	var walk func(typ reflect.Type, path string)
	walk = func(typ reflect.Type, path string) {
		switch typ.Kind() {
		case reflect.Struct:
			for i := range typ.NumField() {
				walk(typ.Field(i).Type, path+"."+typ.Field(i).Name)
			}
		case reflect.Array:
			walk(typ.Elem(), path+"[]")
		case reflect.Pointer, reflect.String, reflect.Slice, reflect.Map, reflect.Interface, reflect.Chan, reflect.Func, reflect.UnsafePointer:
			t.Errorf("healthState%s is a %s: the record must hold no pointers", path, typ.Kind())
		}
	}
	walk(reflect.TypeFor[healthState](), "")
	var st healthState
	if unsafe.Sizeof(st)%64 != 0 {
		t.Errorf("record of %d bytes, not a whole number of cache lines", unsafe.Sizeof(st))
	}
	if end := unsafe.Offsetof(st.snr) + unsafe.Sizeof(st.snr); end > 64 {
		t.Errorf("an uplink's fields end at byte %d, past the first cache line", end)
	}
}

// TestHealthSlotReuse: a record freed by eviction or Forget and handed
// to another device carries nothing of the one before.
func TestHealthSlotReuse(t *testing.T) {
	t0 := time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)
	h := NewHealth(0)
	h.SetMaxUnknown(1)
	full := Observation{EUI: EUI{1}, Time: t0, Name: "a", Model: "m", Source: "s", FCnt: 7, HasFCnt: true,
		RSSI: -90, HasRSSI: true, SNR: 7, HasSNR: true, Battery: 3.6, HasBattery: true, BatteryLevel: 80, HasBatteryLevel: true,
		DeadLetter: "decode", Unknown: true}
	h.Observe(full)
	h.ObserveEvent(EventObservation{EUI: EUI{1}, Time: t0, Error: "x: y"})
	h.Observe(Observation{EUI: EUI{2}, Time: t0.Add(time.Minute), Unknown: true}) // evicts EUI{1}
	full.EUI, full.Unknown = EUI{3}, false
	h.Observe(full)
	h.Forget(EUI{3})
	h.Observe(Observation{EUI: EUI{4}, Time: t0.Add(2 * time.Minute)})
	now := t0.Add(3 * time.Minute)
	for _, e := range []EUI{{2}, {4}} {
		got, ok := h.Get(e, now)
		if !ok || got.Name != e.String() || got.Model != "" || got.Source != "" || got.LastFCnt != nil || got.RSSI != nil ||
			got.SNR != nil || got.Battery != nil || got.BatteryLevel != nil || got.LastDeadLetter != "" || got.LastError != "" ||
			got.Uplinks24h != 1 || got.DeadLetters24h != 0 || got.Interval != 0 || !got.FirstSeen.Equal(got.LastSeen) {
			t.Errorf("%s: %+v, want a fresh record", e, got)
		}
	}
	if n, unknown, evicted := h.Stats(); n != 2 || unknown != 1 || evicted != 1 {
		t.Errorf("stats %d devices, %d unknown, %d evicted; want 2, 1, 1", n, unknown, evicted)
	}
}

// TestHealthLoadsSavedRows: rows in the layout saved before the records
// became a table load to the same report, and a record saved and loaded
// reports all it held.
func TestHealthLoadsSavedRows(t *testing.T) {
	ctx := context.Background()
	s, path := openTestStore(t)
	const old = `{"name":"a","model":"m","source":"s","f_cnt":3,"interval":60,"rssi":-90,"snr":7.5,"battery":3.6,` +
		`"battery_level":80,"last_dead_letter":"decode","first_seen":"2026-05-04T08:00:00Z","last_seen":"2026-05-04T08:01:00.5Z",` +
		`"hours":[{"h":493856,"u":2,"l":1,"d":1}],"last_join":"2026-05-04T07:59:00Z","last_error":"x: y","last_error_time":"2026-05-04T08:00:30Z"}`
	rows := []stateRow{{EUI{9}, []byte(old)}, {EUI{}, []byte(old)}, {EUI{8}, []byte("{not json")}}
	if err := s.writeStates(ctx, "health", batch{rows: rows}); err != nil {
		t.Fatal(err)
	}
	h := NewHealth(0)
	if err := s.LoadHealth(ctx, h); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 5, 4, 8, 2, 0, 0, time.UTC)
	got, ok := h.Get(EUI{9}, now)
	f := func(v float64) *float64 { return &v }
	fc := uint32(3)
	join, errAt := time.Date(2026, 5, 4, 7, 59, 0, 0, time.UTC), time.Date(2026, 5, 4, 8, 0, 30, 0, time.UTC)
	hourly := make([]int, hours)
	hourly[hours-1] = 2
	want := DeviceHealth{DevEUI: EUI{9}, Name: "a", Model: "m", Source: "s", FirstSeen: time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC),
		LastSeen: time.Date(2026, 5, 4, 8, 1, 0, 5e8, time.UTC), LastSeenAge: 59.5, Uplinks24h: 2, Lost24h: 1, LossPct: 100.0 / 3,
		UplinksHourly: hourly, DeadLetters24h: 1, LastDeadLetter: "decode", Interval: 60, Colour: Red,
		LastFCnt: &fc, RSSI: f(-90), SNR: f(7.5), Battery: f(3.6), BatteryLevel: f(80),
		LastJoin: &join, LastError: "x: y", LastErrorTime: &errAt}
	if !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("loaded\n%+v\nwant\n%+v", got, want)
	}
	if n, _, _ := h.Stats(); n != 1 || h.Heard(EUI{}) || h.Heard(EUI{8}) {
		t.Fatalf("%d devices loaded (zero EUI %v, undecodable %v); want the one valid row", n, h.Heard(EUI{}), h.Heard(EUI{8}))
	}

	h.Observe(Observation{EUI: EUI{9}, Time: now, FCnt: 4, HasFCnt: true}) // dirty again, to be saved
	want, _ = h.Get(EUI{9}, now)
	if err := s.SaveHealth(ctx, h); err != nil {
		t.Fatal(err)
	}
	s2 := reopenTestStore(t, s, path)
	h2 := NewHealth(0)
	if err := s2.LoadHealth(ctx, h2); err != nil {
		t.Fatal(err)
	}
	if got, _ := h2.Get(EUI{9}, now); !reflect.DeepEqual(got, want) {
		t.Fatalf("saved and loaded\n%+v\nwant\n%+v", got, want)
	}
}

// TestHealthFootprint: device health's memory per heard device, as
// docs/operations.md states it (under 1,000 bytes), and how little of it
// the collector has to scan: the records are pointer-free, so the scanned
// part is the names and links beside them.
func TestHealthFootprint(t *testing.T) {
	const n = 50000
	t0 := time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("sensor-%06d", i) // the registry's strings, which health shares
	}
	before := heapInUse()
	h := NewHealth(0)
	for i := range n {
		h.Observe(Observation{EUI: EUI{0x70, byte(i >> 16), byte(i >> 8), byte(i)}, Time: t0, Name: names[i], Model: "m", Source: "s",
			FCnt: 1, HasFCnt: true, RSSI: -90, HasRSSI: true, SNR: 7, HasSNR: true, Battery: 3.6, HasBattery: true})
	}
	per := float64(heapInUse()-before) / n
	t.Logf("health of %d heard devices: %.0f bytes per device (record %d, beside it %d)", n, per, unsafe.Sizeof(healthState{}), unsafe.Sizeof(healthAux{}))
	if per > 1000 {
		t.Errorf("health holds %.0f bytes per device; docs/operations.md says under 1,000", per)
	}
	runtime.KeepAlive(h)
	runtime.KeepAlive(names)
}
