package testserver

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// TestMosquittoRestartKeepsSessions checks what Restart promises: QoS 1
// messages queued for an offline persistent session survive it. Run as
// root, mosquitto drops to the user "mosquitto", which could not write
// the persistence file into the test's directory, so everything queued
// was silently lost.
func TestMosquittoRestartKeepsSessions(t *testing.T) {
	m := StartMosquitto(t)
	var mu sync.Mutex
	got := map[string]bool{}
	opts := paho.NewClientOptions().AddBroker(m.URL()).SetClientID("persistent").SetCleanSession(false).
		SetDefaultPublishHandler(func(_ paho.Client, msg paho.Message) {
			mu.Lock()
			got[string(msg.Payload())] = true
			mu.Unlock()
		})
	sub := paho.NewClient(opts)
	if tok := sub.Connect(); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if tok := sub.Subscribe("t", 1, nil); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	sub.Disconnect(50)

	pub := paho.NewClient(paho.NewClientOptions().AddBroker(m.URL()).SetClientID("publisher"))
	if tok := pub.Connect(); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	const n = 20
	for i := 0; i < n; i++ {
		if tok := pub.Publish("t", 1, false, fmt.Sprint(i)); tok.Wait() && tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	pub.Disconnect(50)

	m.Restart()
	if _, err := os.Stat(filepath.Join(m.Dir, "mosquitto.db")); err != nil {
		t.Fatalf("no persistence file after a restart: %v; log:\n%s", err, m.Log())
	}
	sub = paho.NewClient(opts)
	if tok := sub.Connect(); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer sub.Disconnect(50)
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		k := len(got)
		mu.Unlock()
		if k == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %d of %d queued messages after the restart; log:\n%s", k, n, m.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
