package devices

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrBadDevAddr is returned for text that is not a 32-bit DevAddr.
var ErrBadDevAddr = errors.New("devices: invalid DevAddr")

// ErrBadKey is returned for text that is not a 128-bit AES key.
var ErrBadKey = errors.New("devices: invalid key")

// DevAddr is a LoRaWAN device address in display (big-endian) order, the
// order network servers print it; the frame carries it little-endian.
type DevAddr [4]byte

// ParseDevAddr reads 8 hex digits in either case.
func ParseDevAddr(s string) (DevAddr, error) {
	var a DevAddr
	err := a.UnmarshalText([]byte(s))
	return a, err
}

// String returns the lower-case hex form.
func (a DevAddr) String() string { return hex.EncodeToString(a[:]) }

// MarshalText implements encoding.TextMarshaler.
func (a DevAddr) MarshalText() ([]byte, error) {
	out := make([]byte, 8)
	hex.Encode(out, a[:])
	return out, nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *DevAddr) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	if len(s) != 8 {
		return fmt.Errorf("%w %q: want 8 hex digits", ErrBadDevAddr, text)
	}
	if _, err := hex.Decode(a[:], []byte(s)); err != nil {
		return fmt.Errorf("%w %q: %v", ErrBadDevAddr, text, err)
	}
	return nil
}

// Key is a 128-bit AES session key. Its text, JSON and YAML forms are
// masked (all but the last 4 hex digits), so a key never leaves the
// process through a log line, an API response or a re-encoded devices
// file; only the raw bytes reach the crypto code. Unmarshalling accepts 32
// hex digits.
type Key [16]byte

// keyShown is how many trailing hex digits the masked form keeps: enough
// for an operator to tell two keys apart, far too few to guess one.
const keyShown = 4

// ParseKey reads 32 hex digits in either case; spaces, dashes and colons
// between byte pairs are accepted.
func ParseKey(s string) (Key, error) {
	var k Key
	err := k.UnmarshalText([]byte(s))
	return k, err
}

// IsZero reports whether the key is unset. yaml.v3 uses it for omitempty.
func (k Key) IsZero() bool { return k == Key{} }

// String returns the masked form, "" for an unset key.
func (k Key) String() string {
	if k.IsZero() {
		return ""
	}
	h := hex.EncodeToString(k[len(k)-keyShown/2:])
	return strings.Repeat("*", 2*len(k)-keyShown) + h
}

// Format masks the key whatever the verb: without it, %d or %v on a
// struct holding a Key would print the bytes.
func (k Key) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, k.String()) }

// MarshalText implements encoding.TextMarshaler with the masked form.
func (k Key) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// MarshalJSON writes the masked form as a JSON string.
func (k Key) MarshalJSON() ([]byte, error) { return []byte(`"` + k.String() + `"`), nil }

// UnmarshalText implements encoding.TextUnmarshaler. Empty text is the
// unset key. A masked key is refused with a hint, since it is what a
// devices file re-encoded by sensorgate would hold.
func (k *Key) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	if s == "" {
		*k = Key{}
		return nil
	}
	if strings.Contains(s, "*") {
		return fmt.Errorf("%w: the key is masked: give its 32 hex digits", ErrBadKey)
	}
	if len(s) != 32 {
		s = strings.NewReplacer("-", "", ":", "", " ", "").Replace(s)
	}
	if len(s) != 32 {
		// The text is not echoed: it is (almost) a secret.
		return fmt.Errorf("%w: want 32 hex digits, have %d characters", ErrBadKey, len(s))
	}
	if _, err := hex.Decode(k[:], []byte(s)); err != nil {
		*k = Key{}
		return fmt.Errorf("%w: not hex: give 32 hex digits", ErrBadKey)
	}
	return nil
}

// MAC versions a Session may name.
const (
	MACVersion10 = "1.0"
	MACVersion11 = "1.1"
)

// Session is an ABP device's LoRaWAN session: the address it sends from and
// the keys that authenticate and encrypt its frames. It is what lets
// sensorgate take raw frames without a network server.
type Session struct {
	DevAddr DevAddr `yaml:"dev_addr" json:"dev_addr"`
	// MACVersion is "1.0" (default, for every 1.0.x) or "1.1".
	MACVersion string `yaml:"mac_version,omitempty" json:"mac_version,omitempty"`
	// NwkSKey authenticates (MIC) and encrypts FPort 0 in LoRaWAN 1.0.x.
	NwkSKey Key `yaml:"nwk_s_key,omitempty" json:"nwk_s_key,omitempty"`
	// SNwkSIntKey, FNwkSIntKey and NwkSEncKey are LoRaWAN 1.1's split of
	// NwkSKey. The uplink MIC's FNwkSIntKey half is what a gateway feed can
	// verify (the SNwkSIntKey half covers the TX channel index, which only
	// the network server knows); NwkSEncKey decrypts FPort 0.
	SNwkSIntKey Key `yaml:"s_nwk_s_int_key,omitempty" json:"s_nwk_s_int_key,omitempty"`
	FNwkSIntKey Key `yaml:"f_nwk_s_int_key,omitempty" json:"f_nwk_s_int_key,omitempty"`
	NwkSEncKey  Key `yaml:"nwk_s_enc_key,omitempty" json:"nwk_s_enc_key,omitempty"`
	// AppSKey decrypts application payloads (FPort 1–255).
	AppSKey Key `yaml:"app_s_key,omitempty" json:"app_s_key,omitempty"`
}

// Is11 reports whether the session is LoRaWAN 1.1.
func (s *Session) Is11() bool { return s.MACVersion == MACVersion11 }

// MICKey is the key the uplink MIC is checked with: NwkSKey (1.0) or
// FNwkSIntKey (1.1).
func (s *Session) MICKey() Key {
	if s.Is11() {
		return s.FNwkSIntKey
	}
	return s.NwkSKey
}

// NwkEncKey is the key of FPort 0 (MAC commands): NwkSKey (1.0) or
// NwkSEncKey (1.1).
func (s *Session) NwkEncKey() Key {
	if s.Is11() {
		return s.NwkSEncKey
	}
	return s.NwkSKey
}

// Validate reports every missing key of the session's MAC version at once.
func (s *Session) Validate() error {
	var errs []error
	switch s.MACVersion {
	case "", MACVersion10:
		if s.NwkSKey.IsZero() {
			errs = append(errs, errors.New("nwk_s_key is missing (LoRaWAN 1.0)"))
		}
		if !s.SNwkSIntKey.IsZero() || !s.FNwkSIntKey.IsZero() || !s.NwkSEncKey.IsZero() {
			errs = append(errs, errors.New("1.1 keys given for a 1.0 session: set mac_version: \"1.1\" or use nwk_s_key"))
		}
	case MACVersion11:
		if s.FNwkSIntKey.IsZero() {
			errs = append(errs, errors.New("f_nwk_s_int_key is missing (LoRaWAN 1.1)"))
		}
		if s.NwkSEncKey.IsZero() {
			errs = append(errs, errors.New("nwk_s_enc_key is missing (LoRaWAN 1.1)"))
		}
		if !s.NwkSKey.IsZero() {
			errs = append(errs, errors.New("nwk_s_key given for a 1.1 session: use f_nwk_s_int_key, s_nwk_s_int_key and nwk_s_enc_key"))
		}
	default:
		errs = append(errs, fmt.Errorf("mac_version %q: use \"1.0\" or \"1.1\"", s.MACVersion))
	}
	if s.AppSKey.IsZero() {
		errs = append(errs, errors.New("app_s_key is missing"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("session %s: %w", s.DevAddr, errors.Join(errs...))
	}
	return nil
}
