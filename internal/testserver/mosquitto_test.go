package testserver

import (
	"net"
	"testing"
)

func TestStartMosquittoListensAndStops(t *testing.T) {
	m := StartMosquitto(t)
	c, err := net.Dial("tcp", m.URL()[len("tcp://"):])
	if err != nil {
		t.Fatalf("broker not reachable: %v", err)
	}
	c.Close()
	m.Stop()
	if _, err := net.Dial("tcp", m.URL()[len("tcp://"):]); err == nil {
		t.Fatal("broker still listening after Stop")
	}
}
