package gateway

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/devices"
)

// TestPointsSorted: Points builds fields and tags in key order without
// sorting some of them (uplink fields, the channel tag), so check the
// order on uplinks that take every branch.
func TestPointsSorted(t *testing.T) {
	p, _, _ := testPipeline(t)
	p.Sources["gw"] = SourcePolicy{AcceptUnknown: true, GatewayPoints: true}
	lpp := decoders.NewRegistry()
	dec, _ := lpp.Lookup("cayenne-lpp")
	p.Decoders = decoderTable{"temp-test": mustLookup(t, p.Decoders, "temp-test"), "cayenne-lpp": dec}
	reg, err := devices.NewRegistry([]devices.Device{
		{EUI: euiA, Name: "bin-12", Model: "temp-test", Tags: map[string]string{"district": "north"}},
		{EUI: euiB, Name: "weather", Model: "cayenne-lpp", Tags: map[string]string{"district": "south"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	p.Devices = reg
	gws := []GatewayRx{{ID: "g1", RSSI: -80, SNR: 7, HasSNR: true}, {ID: "g2", RSSI: -60}}
	ups := []Uplink{
		{Source: "gw", DevEUI: euiA, FPort: 2, HasFPort: true, FCnt: 7, HasFCnt: true, Payload: []byte{0x00, 0xE2},
			Time: t0, Radio: Radio{Frequency: 868100000, DR: 5, SF: 7, Gateways: gws}},
		{Source: "gw", DevEUI: euiA, Payload: []byte{0x00, 0xE2}, Time: t0, Radio: Radio{DR: -1, Gateways: gws[:1]}},
		// Cayenne: two channels of temperature, humidity, GPS.
		{Source: "gw", DevEUI: euiB, FPort: 1, HasFPort: true, Time: t0, Radio: Radio{DR: 3},
			Payload: []byte{1, 0x67, 0, 0xEA, 2, 0x67, 0, 0x10, 1, 0x68, 0x50, 3, 0x88, 0x06, 0x76, 0x5f, 0xf2, 0x96, 0x0a, 0x00, 0x03, 0xe8}},
	}
	for i, up := range ups {
		pts, _, err := p.Points(up)
		if err != nil {
			t.Fatalf("uplink %d: %v", i, err)
		}
		for _, pt := range pts {
			for j := 1; j < len(pt.Fields); j++ {
				if pt.Fields[j-1].Key >= pt.Fields[j].Key {
					t.Errorf("uplink %d: %s fields not in strict key order: %v", i, pt.Measurement, pt.Fields)
				}
			}
			for j := 1; j < len(pt.Tags); j++ {
				if pt.Tags[j-1].Key >= pt.Tags[j].Key {
					t.Errorf("uplink %d: %s tags not in strict key order: %v", i, pt.Measurement, pt.Tags)
				}
			}
		}
		if len(pts) < 3 {
			t.Errorf("uplink %d: only %d points", i, len(pts))
		}
	}
}

func mustLookup(t *testing.T, l DecoderLookup, model string) decoders.Decoder {
	t.Helper()
	d, ok := l.Lookup(model)
	if !ok {
		t.Fatalf("no decoder %s", model)
	}
	return d
}

// TestViewsFollowRegistry: the per-device tags are cached, so a registry
// reload must show in the next message's points.
func TestViewsFollowRegistry(t *testing.T) {
	p, sink, _ := testPipeline(t)
	reg := p.Devices.(*devices.Registry)
	up := Uplink{Source: "strict", DevEUI: euiA, Payload: []byte{0x00, 0xE2}, Time: t0, Radio: Radio{DR: -1}}
	district := func() string {
		t.Helper()
		sink.pts = nil
		if err := p.Handle(context.Background(), up); err != nil {
			t.Fatal(err)
		}
		for _, tg := range sink.pts[0].Tags {
			if tg.Key == "district" {
				return tg.Value
			}
		}
		return ""
	}
	if d := district(); d != "north" {
		t.Fatalf("district %q, want north", d)
	}
	if d := district(); d != "north" {
		t.Fatalf("cached: district %q, want north", d)
	}
	if err := reg.Replace([]devices.Device{{EUI: euiA, Name: "bin-12", Model: "temp-test", Tags: map[string]string{"district": "east"}}}); err != nil {
		t.Fatal(err)
	}
	if d := district(); d != "east" {
		t.Fatalf("after reload: district %q, want east", d)
	}
	// A second source gets its own source tag from the same device.
	up.Source = "ns"
	sink.pts = nil
	if err := p.Handle(context.Background(), up); err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(sink.pts[0].Tags, func(tg Tag) bool { return tg.Key == "source" }); i < 0 || sink.pts[0].Tags[i].Value != "ns" {
		t.Fatalf("tags %v, want source ns", sink.pts[0].Tags)
	}
}

// TestViewsConcurrent runs messages of several devices and sources from
// many goroutines while the registry reloads (run with -race).
func TestViewsConcurrent(t *testing.T) {
	p, _, _ := testPipeline(t)
	p.Sink = &recordingSink{}
	reg := p.Devices.(*devices.Registry)
	devs := []devices.Device{{EUI: euiA, Name: "bin-12", Model: "temp-test"}, {EUI: euiB, Name: "b", Model: "temp-test"}}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				up := Uplink{Source: []string{"strict", "ns"}[i%2], DevEUI: []devices.EUI{euiA, euiB}[(g+i)%2], Payload: []byte{0, 1}, Time: t0}
				if err := p.Handle(context.Background(), up); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range 20 {
		if err := reg.Replace(devs); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}

// TestCountersHotAndNamed: the pipeline's fixed counters read like the
// named ones, and appear once counted.
func TestCountersHotAndNamed(t *testing.T) {
	var c Counters
	if len(c.Names()) != 0 || len(c.Snapshot()) != 0 {
		t.Fatalf("fresh counters: %v", c.Snapshot())
	}
	c.add(cUplinks, 2)
	c.Inc("uplinks")
	c.Inc("lorawan.replays")
	c.Add(deadLetterCounter(ReasonDecode), 3)
	want := map[string]uint64{"uplinks": 3, "lorawan.replays": 1, "dead_letters.decode_error": 3}
	if got := c.Snapshot(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Snapshot %v, want %v", got, want)
	}
	if got := strings.Join(c.Names(), ","); got != "dead_letters.decode_error,lorawan.replays,uplinks" {
		t.Fatalf("Names %s", got)
	}
	if c.Get("uplinks") != 3 || c.Get("warnings") != 0 || c.Get("nope") != 0 {
		t.Fatalf("Get: %v", c.Snapshot())
	}
}

// TestViewCacheGenerations: a view is kept per registry generation and
// device index; a message that resolved its device before a reload (an
// older generation) neither reads the newer cache nor replaces it.
func TestViewCacheGenerations(t *testing.T) {
	reg, err := devices.NewRegistry([]devices.Device{{EUI: euiA, Name: "a", Model: "temp-test"}, {EUI: euiB, Name: "b", Model: "temp-test"}})
	if err != nil {
		t.Fatal(err)
	}
	p := &Pipeline{Devices: reg}
	old, _ := reg.Ref(euiA)
	if err := reg.Replace([]devices.Device{{EUI: euiA, Name: "a2", Model: "temp-test"}}); err != nil {
		t.Fatal(err)
	}
	cur, _ := reg.Ref(euiA)
	p.storeView(cur, deviceView{source: "s", decoded: "decoded_new"})
	p.storeView(cur, deviceView{source: "t", decoded: "decoded_t"})
	if v, ok := p.cachedView(cur, "s"); !ok || v.decoded != "decoded_new" {
		t.Fatalf("current view: %+v %v", v, ok)
	}
	if v, ok := p.cachedView(cur, "t"); !ok || v.decoded != "decoded_t" {
		t.Fatalf("second source's view: %+v %v", v, ok)
	}
	if v, ok := p.cachedView(old, "s"); ok {
		t.Fatalf("a ref of the older generation read %+v", v)
	}
	p.storeView(old, deviceView{source: "s", decoded: "decoded_old"})
	if v, ok := p.cachedView(cur, "s"); !ok || v.decoded != "decoded_new" {
		t.Fatalf("after a store with an older ref: %+v %v", v, ok)
	}
}

// TestPackView: a stored view carries the tags it was given, in order,
// whether they fit inline or not, and shares no memory with the strings
// it was built from.
func TestPackView(t *testing.T) {
	for _, n := range []int{0, 1, packedTags, packedTags + 3} {
		tags := make([]Tag, n)
		for i := range tags {
			tags[i] = Tag{Key: fmt.Sprintf("k%02d", i), Value: strings.Repeat("v", i)}
		}
		next := &viewList{}
		l := packView(deviceView{source: "s", tags: tags, decoded: "decoded_m"}, next)
		if l.next != next || l.source != "s" || l.decoded != "decoded_m" || !slices.Equal(l.tags, tags) {
			t.Fatalf("%d tags: packed %+v, want %+v", n, l.deviceView, tags)
		}
		for i, tg := range l.tags {
			if tg.Value != "" && unsafe.StringData(tg.Value) == unsafe.StringData(tags[i].Value) {
				t.Errorf("%d tags: tag %d shares the caller's string", n, i)
			}
		}
	}
}
