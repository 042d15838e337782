package simulate

import (
	"context"
	"fmt"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// PublishOptions say where and how fast to publish.
type PublishOptions struct {
	Broker   string  // tcp://127.0.0.1:1883
	ClientID string  // default "sensorgate-simulate"
	QoS      byte    // default 1
	Rate     float64 // messages per second; 0 = as fast as the broker takes them
	Count    int     // how many messages
	// InOrder publishes the fleet's devices in turn (Fleet.NextInOrder)
	// instead of at random.
	InOrder bool
	// OnPublished is called after each message the broker acknowledged.
	OnPublished func(Message)
	// Stop, when closed, ends publishing before Count: no more messages
	// are sent, and Publish returns once those sent are acknowledged
	// (cancelling ctx instead abandons them, acknowledged or not).
	Stop <-chan struct{}
}

// window bounds unacknowledged publishes, so a fast publisher keeps the
// broker busy without queueing the whole stream in memory.
const window = 256

// Publish sends Count messages of the fleet to the broker and returns when
// the broker has acknowledged all of them (QoS ≥ 1) or ctx ends.
func Publish(ctx context.Context, f *Fleet, opt PublishOptions) error {
	if opt.ClientID == "" {
		opt.ClientID = "sensorgate-simulate"
	}
	if opt.QoS == 0 && opt.Rate == 0 {
		opt.QoS = 1
	}
	o := paho.NewClientOptions().AddBroker(opt.Broker).SetClientID(opt.ClientID).
		SetCleanSession(true).SetAutoReconnect(true).SetConnectTimeout(10 * time.Second).
		SetMaxResumePubInFlight(window).SetOrderMatters(false)
	c := paho.NewClient(o)
	if err := wait(ctx, c.Connect()); err != nil {
		return fmt.Errorf("simulate: connect to %s: %w (is a broker listening?)", opt.Broker, err)
	}
	defer c.Disconnect(250)

	type pending struct {
		tok paho.Token
		msg Message
	}
	inflight := make(chan pending, window)
	errc := make(chan error, 1)
	go func() {
		// Acknowledgements arrive in publish order for one connection; wait
		// for them in that order.
		defer close(errc)
		for p := range inflight {
			if err := wait(ctx, p.tok); err != nil {
				errc <- err
				for range inflight {
				}
				return
			}
			if opt.OnPublished != nil {
				opt.OnPublished(p.msg)
			}
		}
	}()
	start := time.Now()
	var err error
	for i := 0; i < opt.Count; i++ {
		if opt.Rate > 0 {
			due := start.Add(time.Duration(float64(i) / opt.Rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				select {
				case <-ctx.Done():
				case <-opt.Stop:
				case <-time.After(d):
				}
			}
		}
		if err = ctx.Err(); err != nil {
			break
		}
		if stopped(opt.Stop) {
			break
		}
		next := f.Next
		if opt.InOrder {
			next = f.NextInOrder
		}
		m := next()
		inflight <- pending{c.Publish(m.Topic, opt.QoS, false, m.Payload), m}
	}
	close(inflight)
	if perr := <-errc; perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		return fmt.Errorf("simulate: publish: %w", err)
	}
	return nil
}

func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

func wait(ctx context.Context, t paho.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}
