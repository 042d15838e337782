package decoders

import "fmt"

// needBytes returns an error wrapping ErrTruncated unless b holds at least n
// bytes. Decoders call it before every fixed-size read, so a short payload
// becomes a dead letter instead of an index panic; what names the frame in
// the message an operator reads.
func needBytes(b []byte, n int, what string) error {
	if len(b) < n {
		return fmt.Errorf("%w: %s needs %d bytes, got %d", ErrTruncated, what, n, len(b))
	}
	return nil
}
