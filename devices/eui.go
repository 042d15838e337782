package devices

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrBadEUI is returned for text that is not a 64-bit EUI.
var ErrBadEUI = errors.New("devices: invalid EUI")

// EUI is a 64-bit IEEE extended unique identifier (DevEUI, JoinEUI,
// gateway EUI). Its text form is 16 lower-case hex digits, the form written
// to the dev_eui tag, whatever case a network server sent.
type EUI [8]byte

// ParseEUI reads 16 hex digits in either case; dashes and colons between
// byte pairs (as some vendor sheets print them) are accepted.
func ParseEUI(s string) (EUI, error) {
	var e EUI
	err := e.UnmarshalText([]byte(s))
	return e, err
}

// String returns the lower-case hex form.
func (e EUI) String() string { return hex.EncodeToString(e[:]) }

// IsZero reports whether the EUI is all zeros (unset).
func (e EUI) IsZero() bool { return e == EUI{} }

// MarshalText implements encoding.TextMarshaler.
func (e EUI) MarshalText() ([]byte, error) {
	out := make([]byte, 16)
	hex.Encode(out, e[:])
	return out, nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (e *EUI) UnmarshalText(text []byte) error {
	s := string(text)
	if len(s) != 16 {
		s = strings.NewReplacer("-", "", ":", "", " ", "").Replace(s)
	}
	if len(s) != 16 {
		return fmt.Errorf("%w %q: want 16 hex digits", ErrBadEUI, text)
	}
	if _, err := hex.Decode(e[:], []byte(s)); err != nil {
		return fmt.Errorf("%w %q: %v", ErrBadEUI, text, err)
	}
	return nil
}
