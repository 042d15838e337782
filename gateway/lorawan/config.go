package lorawan

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"time"
)

// SourceType is the config source type of the Semtech UDP source.
const SourceType = "semtech-udp"

// Frame-counter reset policies (FrameConfig.FCntReset).
const (
	// FCntResetReject treats every frame counter that does not increase as
	// a replay. Safest; an ABP device that reboots and restarts at 0 is
	// rejected until an operator clears its state (restart sensorgate).
	FCntResetReject = "reject"
	// FCntResetAcceptLow accepts a counter restart: a frame whose 32-bit
	// FCnt is at most FCntResetMax, from a device silent for at least
	// FCntResetGap, becomes the new counter base. The price: whoever
	// recorded the device's first frames can replay them after such a gap.
	FCntResetAcceptLow = "accept-low"
)

// Unknown-device policies (FrameConfig.UnknownDevices).
const (
	// UnknownDrop counts and drops frames of DevAddrs no session has. A
	// gateway hears every network nearby, so most such frames are simply
	// someone else's.
	UnknownDrop = "drop"
	// UnknownReject keeps them as dead letters (reason unknown_device).
	UnknownReject = "reject"
)

// Defaults.
const (
	DefaultDedupWindow  = 200 * time.Millisecond
	DefaultFCntResetMax = 16
	DefaultFCntResetGap = 10 * time.Minute
	DefaultMaxInFlight  = 1024
	DefaultDrainTimeout = 10 * time.Second
	// DefaultDedupMaxFrames holds a minute of 1,600 frames a second.
	DefaultDedupMaxFrames = 100000
)

// FrameConfig is the frame-handling policy, shared by every feed of raw
// frames (Semtech UDP here, Gateway Bridge MQTT in gateway/mqtt).
type FrameConfig struct {
	// DedupWindow is how long the first copy of a frame waits for other
	// gateways' copies before it is handled (default 200ms).
	DedupWindow time.Duration `yaml:"dedup_window"`
	// FCntReset is FCntResetReject (default) or FCntResetAcceptLow.
	FCntReset string `yaml:"fcnt_reset"`
	// FCntResetMax is the highest FCnt accepted as a counter restart under
	// accept-low (default 16).
	FCntResetMax uint32 `yaml:"fcnt_reset_max"`
	// FCntResetGap is how long the device must have been silent before a
	// restart is accepted under accept-low (default 10m).
	FCntResetGap time.Duration `yaml:"fcnt_reset_gap"`
	// UnknownDevices is UnknownDrop (default) or UnknownReject.
	UnknownDevices string `yaml:"unknown_devices"`
	// DedupMaxFrames bounds the handled frames remembered for a minute so
	// that late copies are dropped as duplicates (default 100000); past
	// it the oldest are forgotten early (counted), and a copy of one of
	// those arriving later is a replay dead letter.
	DedupMaxFrames int `yaml:"dedup_max_frames"`
}

func (c FrameConfig) withDefaults() FrameConfig {
	c.DedupWindow = cmp.Or(c.DedupWindow, DefaultDedupWindow)
	c.FCntReset = cmp.Or(c.FCntReset, FCntResetReject)
	c.FCntResetMax = cmp.Or(c.FCntResetMax, DefaultFCntResetMax)
	c.FCntResetGap = cmp.Or(c.FCntResetGap, DefaultFCntResetGap)
	c.UnknownDevices = cmp.Or(c.UnknownDevices, UnknownDrop)
	c.DedupMaxFrames = cmp.Or(c.DedupMaxFrames, DefaultDedupMaxFrames)
	return c
}

// Validate reports every problem at once; zero values mean the defaults.
func (c FrameConfig) Validate() error {
	var errs []error
	// oneOf checks a policy setting: empty (the default), a or b.
	oneOf := func(key, v, a, b, why string) {
		if v != "" && v != a && v != b {
			errs = append(errs, fmt.Errorf("%s %q: use %s or %s%s", key, v, a, b, why))
		}
	}
	if c.DedupWindow < 0 || c.DedupWindow > 10*time.Second {
		errs = append(errs, fmt.Errorf("dedup_window %s: set a duration between 0 and 10s, or leave it out for %s", c.DedupWindow, DefaultDedupWindow))
	}
	oneOf("fcnt_reset", c.FCntReset, FCntResetReject, FCntResetAcceptLow, "")
	if c.FCntResetGap < 0 {
		errs = append(errs, fmt.Errorf("fcnt_reset_gap %s is negative: set a positive duration or leave it out for %s", c.FCntResetGap, DefaultFCntResetGap))
	}
	oneOf("unknown_devices", c.UnknownDevices, UnknownDrop, UnknownReject, " (raw frames carry no device name to accept them with)")
	if c.DedupMaxFrames < 0 {
		errs = append(errs, fmt.Errorf("dedup_max_frames %d is negative: leave it out for %d", c.DedupMaxFrames, DefaultDedupMaxFrames))
	}
	return errors.Join(errs...)
}

// Config is a Semtech UDP packet-forwarder source:
//
//	sources:
//	  - name: city-gateways
//	    type: semtech-udp
//	    listen: "0.0.0.0:1700"
//	    dedup_window: 200ms
//	    fcnt_reset: reject        # or accept-low
//	    unknown_devices: drop     # or reject
type Config struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"` // SourceType
	// Listen is the UDP address the packet forwarders send to
	// (serv_port_up and serv_port_down of global_conf.json point here).
	Listen string `yaml:"listen"`
	// MaxInFlight bounds the frames between receipt and a handled uplink
	// (default 1024); beyond it the socket is not read, and the kernel
	// drops what does not fit its buffer.
	MaxInFlight int `yaml:"max_in_flight"`
	// DrainTimeout bounds how long frames already received are still
	// handled after shutdown begins (default 10s).
	DrainTimeout time.Duration `yaml:"drain_timeout"`

	FrameConfig `yaml:",inline"`
}

func (c Config) withDefaults() Config {
	c.Type = cmp.Or(c.Type, SourceType)
	c.MaxInFlight = cmp.Or(c.MaxInFlight, DefaultMaxInFlight)
	c.DrainTimeout = cmp.Or(c.DrainTimeout, DefaultDrainTimeout)
	c.FrameConfig = c.FrameConfig.withDefaults()
	return c
}

// Validate reports every problem at once, each naming the setting to fix.
func (c Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("name is empty: give the source a name (it is the source tag)"))
	}
	if c.Type != "" && c.Type != SourceType {
		errs = append(errs, fmt.Errorf("type %q: this source is %s", c.Type, SourceType))
	}
	if c.Listen == "" {
		errs = append(errs, errors.New(`listen is empty: set the UDP address packet forwarders send to, e.g. "0.0.0.0:1700"`))
	} else if _, err := net.ResolveUDPAddr("udp", c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen %q: %w: use host:port, e.g. \"0.0.0.0:1700\"", c.Listen, err))
	}
	if c.MaxInFlight < 0 {
		errs = append(errs, fmt.Errorf("max_in_flight %d is negative: leave it out for %d", c.MaxInFlight, DefaultMaxInFlight))
	}
	if c.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("drain_timeout %s is negative: leave it out for %s", c.DrainTimeout, DefaultDrainTimeout))
	}
	if err := c.FrameConfig.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lorawan source %q: %w", c.Name, err)
	}
	return nil
}
