package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// noopCommand is the no-op subscriber, the ceiling sensorgate is measured
// against: paho with the session sensorgate uses (ARCHITECTURE §6: MQTT 3.1.1,
// QoS 1, clean session off, manual ack, order not required), which
// receives, acknowledges and discards. The benchmark runs it as a
// subprocess (a re-exec of this binary) so its CPU time and peak RSS come
// from /proc exactly like sensorgate's.
//
// It writes "done received=N dup=D" to stdout once it has acknowledged n
// messages, then keeps acknowledging until ctx ends (SIGTERM), disconnects
// and writes "final received=N dup=D".
func noopCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("noop", flag.ContinueOnError)
	fs.SetOutput(stderr)
	broker := fs.String("broker", "tcp://127.0.0.1:1883", "broker URL")
	clientID := fs.String("client-id", "bench-noop", "client id of the persistent session")
	topic := fs.String("topic", "application/+/device/+/event/up", "topic filter")
	n := fs.Int("n", 100000, "report done after this many messages")
	if err := fs.Parse(args); err != nil {
		return err
	}

	var received, dups atomic.Int64
	var doneOnce sync.Once
	var outMu sync.Mutex
	say := func(format string, a ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintf(stdout, format+"\n", a...)
	}
	onMessage := func(_ paho.Client, m paho.Message) {
		m.Ack()
		if m.Duplicate() {
			dups.Add(1)
		}
		if received.Add(1) == int64(*n) {
			doneOnce.Do(func() { say("done received=%d dup=%d", received.Load(), dups.Load()) })
		}
	}
	subscribed := make(chan error, 1)
	o := paho.NewClientOptions().
		AddBroker(*broker).
		SetClientID(*clientID).
		SetProtocolVersion(4).
		SetCleanSession(false).
		SetAutoAckDisabled(true).
		SetOrderMatters(false).
		SetAutoReconnect(true).
		SetConnectTimeout(10 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetResumeSubs(false).
		// As in sensorgate, the session's queued messages arrive right
		// after CONNACK, before SUBACK: the default handler takes them.
		SetDefaultPublishHandler(onMessage).
		SetOnConnectHandler(func(c paho.Client) {
			tok := c.Subscribe(*topic, 1, nil)
			tok.Wait()
			select {
			case subscribed <- tok.Error():
			default:
			}
		})
	c := paho.NewClient(o)
	if tok := c.Connect(); tok.Wait() && tok.Error() != nil {
		return fmt.Errorf("noop: connect to %s: %w", *broker, tok.Error())
	}
	select {
	case err := <-subscribed:
		if err != nil {
			c.Disconnect(250)
			return fmt.Errorf("noop: subscribe %s: %w", *topic, err)
		}
		say("ready")
	case <-ctx.Done():
	}
	<-ctx.Done()
	c.Disconnect(250)
	say("final received=%d dup=%d", received.Load(), dups.Load())
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
