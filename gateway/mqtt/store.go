package mqtt

import (
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// nopStore is paho's Store for a source subscribed at QoS 0 or 1: it keeps
// nothing. paho puts every QoS 1 message it receives in its store until
// the PUBACK is sent, and every SUBSCRIBE until its SUBACK, for resume()
// to replay on a reconnection; but resume() replays neither a received
// QoS 1 message (the broker redelivers it: that is the persistent
// session's job) nor, with ResumeSubs off, a SUBSCRIBE (OnConnect
// subscribes on every connection). So for this client the store is a map
// insert, a map delete and a lock per message for nothing. At QoS 2 paho's
// own store stays: it replays the PUBREL of an interrupted exchange.
type nopStore struct{}

var _ paho.Store = nopStore{}

func (nopStore) Open()                             {}
func (nopStore) Put(string, packets.ControlPacket) {}
func (nopStore) Get(string) packets.ControlPacket  { return nil }
func (nopStore) All() []string                     { return nil }
func (nopStore) Del(string)                        {}
func (nopStore) Close()                            {}
func (nopStore) Reset()                            {}
