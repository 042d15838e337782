package gateway

import (
	"context"
	"testing"

	"github.com/sensorgate/sensorgate/decoders"
)

// TestDecoderGetsDevEUI: the decoder of a device's model is told which
// device the payload is from (JavaScript codecs tag their console output
// with it).
func TestDecoderGetsDevEUI(t *testing.T) {
	p, _, _ := testPipeline(t)
	var got []string
	p.Decoders = decoderTable{"temp-test": decoders.Func(func(in decoders.Input) (decoders.Result, error) {
		got = append(got, in.DevEUI)
		return decoders.Result{}, nil
	})}
	up := Uplink{Source: "strict", DevEUI: euiA, FPort: 2, HasFPort: true, Payload: []byte{0x00, 0xE2}, Time: t0}
	if err := p.Handle(context.Background(), up); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "0101010101010101" {
		t.Fatalf("decoder saw DevEUI %q, want [0101010101010101]", got)
	}
}
