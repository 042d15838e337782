package sandbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/decoders/script"
)

// hello is the first request to a worker: the limits it sets on itself
// before it runs any codec.
type hello struct {
	ScriptTimeout time.Duration // goja's interrupt, per call (decoders.timeout)
	MemoryLimit   int64         // bytes of heap the worker may map
	MaxOutput     int           // largest answer frame
	MaxRequest    int           // largest request frame
	Debug         bool          // forward console output to stderr
}

func appendHello(b []byte, h hello) []byte {
	b = binary.AppendUvarint(b, uint64(h.ScriptTimeout))
	b = binary.AppendUvarint(b, uint64(h.MemoryLimit))
	b = binary.AppendUvarint(b, uint64(h.MaxOutput))
	b = binary.AppendUvarint(b, uint64(h.MaxRequest))
	if h.Debug {
		return append(b, 1)
	}
	return append(b, 0)
}

func readHello(body []byte) (hello, error) {
	r := reader{b: body}
	h := hello{
		ScriptTimeout: time.Duration(min(r.uvarint(), 1<<62)),
		MemoryLimit:   int64(min(r.uvarint(), 1<<62)),
		MaxOutput:     int(min(r.uvarint(), 1<<31)),
		MaxRequest:    int(min(r.uvarint(), 1<<31)),
		Debug:         r.byte() == 1,
	}
	if err := r.end(); err != nil {
		return hello{}, err
	}
	if h.ScriptTimeout <= 0 || h.MaxOutput < minFrame || h.MaxRequest < minFrame {
		return hello{}, fmt.Errorf("%w: hello with limits %+v", errFrame, h)
	}
	return h, nil
}

// minFrame is the smallest frame limit a hello may set: room for an
// error message.
const minFrame = 4 << 10

// hashSize is a codec version's key: SHA-256 of its source.
const hashSize = 32

func appendLoad(b []byte, sum [hashSize]byte, name string, src []byte) []byte {
	b = append(b, sum[:]...)
	b = appendString(b, name)
	return appendBytes(b, src)
}

func readLoad(body []byte) (sum [hashSize]byte, name string, src []byte, err error) {
	r := reader{b: body}
	copy(sum[:], r.fixed(hashSize))
	name = r.string()
	src = r.bytes()
	return sum, name, src, r.end()
}

func appendLoaded(b []byte, style script.Style, normalize bool) []byte {
	b = append(b, byte(style))
	if normalize {
		return append(b, 1)
	}
	return append(b, 0)
}

func readLoaded(body []byte) (script.Style, bool, error) {
	r := reader{b: body}
	style, norm := script.Style(r.byte()), r.byte()
	return style, norm == 1, r.end()
}

// appendDecode writes a decode request; variables go in key order, so the
// same input is the same frame.
func appendDecode(b []byte, sum [hashSize]byte, in decoders.Input, keys []string) []byte {
	b = append(b, sum[:]...)
	return appendInput(b, in, keys)
}

// appendBatch writes a batch request: the codec's hash, then each input.
func appendBatch(b []byte, sum [hashSize]byte, ins []decoders.Input, keys []string) []byte {
	b = append(b, sum[:]...)
	b = binary.AppendUvarint(b, uint64(len(ins)))
	for _, in := range ins {
		b = appendInput(b, in, keys)
	}
	return b
}

// appendInput writes one uplink of a decode or batch request.
func appendInput(b []byte, in decoders.Input, keys []string) []byte {
	b = append(b, in.FPort)
	b = appendTime(b, in.Time)
	b = appendString(b, in.DevEUI)
	b = appendBytes(b, in.Bytes)
	b = binary.AppendUvarint(b, uint64(len(in.Variables)))
	keys = keys[:0]
	for k := range in.Variables {
		keys = append(keys, k)
	}
	if len(keys) > 1 {
		sort.Strings(keys)
	}
	for _, k := range keys {
		b = appendString(b, k)
		b = appendString(b, in.Variables[k])
	}
	return b
}

// readDecode parses a decode request; in.Bytes aliases body.
func readDecode(body []byte) (sum [hashSize]byte, in decoders.Input, err error) {
	r := reader{b: body}
	copy(sum[:], r.fixed(hashSize))
	in = r.input()
	return sum, in, r.end()
}

// readBatch parses a batch request; each input is handed to f as it is
// read (its Bytes alias body). A batch of more than max inputs breaks
// the protocol.
func readBatch(body []byte, max int, f func(decoders.Input)) (sum [hashSize]byte, err error) {
	r := reader{b: body}
	copy(sum[:], r.fixed(hashSize))
	n := r.count(minInput)
	if n == 0 || n > max {
		r.fail()
	}
	for range n {
		in := r.input()
		if r.err != nil {
			break
		}
		f(in)
	}
	return sum, r.end()
}

// minInput is the fewest bytes one input takes on the wire.
const minInput = 5

// input reads one uplink of a decode or batch request.
func (r *reader) input() (in decoders.Input) {
	in.FPort = r.byte()
	in.Time = r.time()
	in.DevEUI = r.string()
	in.Bytes = r.bytes()
	if n := r.count(2); n > 0 {
		in.Variables = make(map[string]string, n)
		for range n {
			k := r.string()
			in.Variables[k] = r.string()
		}
	}
	return in
}

// appendResult writes a decode's result.
func appendResult(b []byte, res decoders.Result) []byte {
	b = binary.AppendUvarint(b, uint64(len(res.Warnings)))
	for _, w := range res.Warnings {
		b = appendString(b, w)
	}
	b = res.Record.AppendWire(b)
	b = binary.AppendUvarint(b, uint64(len(res.Samples)))
	for _, s := range res.Samples {
		b = appendString(b, s.Quantity)
		b = append(b, byte(s.Value.Kind))
		switch s.Value.Kind {
		case decoders.NumberValue:
			b = appendFloat(b, s.Value.Num)
		case decoders.StringValue:
			b = appendString(b, s.Value.Str)
		case decoders.BoolValue:
			if s.Value.Bool {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		}
		b = appendString(b, s.Channel)
		b = appendTime(b, s.Time)
		b = appendString(b, s.Key)
	}
	return b
}

// readResult parses a result into a pooled record; maxNodes bounds the
// record's values.
func readResult(body []byte, maxNodes int) (decoders.Result, error) {
	r := reader{b: body}
	var res decoders.Result
	if n := r.count(1); n > 0 {
		res.Warnings = make([]string, n)
		for i := range res.Warnings {
			res.Warnings[i] = r.string()
		}
	}
	if r.err != nil {
		return decoders.Result{}, r.err
	}
	rec := decoders.NewRecord(0)
	rest, err := rec.ReadWire(r.b, maxNodes)
	if err != nil {
		rec.Release()
		return decoders.Result{}, fmt.Errorf("%w: %w", errFrame, err)
	}
	r.b = rest
	if n := r.count(4); n > 0 {
		res.Samples = rec.Samples(n)
		for range n {
			var s decoders.Sample
			s.Quantity = r.string()
			switch kind := decoders.ValueKind(r.byte()); kind {
			case decoders.Null:
			case decoders.NumberValue:
				s.Value = decoders.NumberVal(r.float())
			case decoders.StringValue:
				s.Value = decoders.StringVal(r.string())
			case decoders.BoolValue:
				s.Value = decoders.BoolVal(r.byte() == 1)
			default:
				r.fail()
			}
			s.Channel = r.string()
			s.Time = r.time()
			s.Key = r.string()
			res.Samples = append(res.Samples, s)
		}
	}
	if err := r.end(); err != nil {
		rec.Release()
		return decoders.Result{}, err
	}
	res.Record = rec
	return res, nil
}

// Error kinds on the wire: which sentinel a worker's error matched, so
// the daemon's errors.Is answers as it would in-process.
const (
	kindOther byte = iota
	kindTimeout
	kindCodec
	kindLoad
	kindRejected
	kindInvalid
	kindTruncated
)

func appendError(b []byte, err error) []byte {
	var rej *script.RejectedError
	if errors.As(err, &rej) {
		b = append(b, kindRejected)
		b = appendString(b, rej.Codec)
		b = appendString(b, rej.Func)
		b = binary.AppendUvarint(b, uint64(len(rej.Messages)))
		for _, m := range rej.Messages {
			b = appendString(b, m)
		}
		return b
	}
	kind := kindOther
	for _, k := range []struct {
		k   byte
		err error
	}{{kindTimeout, script.ErrTimeout}, {kindLoad, script.ErrLoad}, {kindCodec, script.ErrCodec},
		{kindInvalid, decoders.ErrInvalid}, {kindTruncated, decoders.ErrTruncated}} {
		if errors.Is(err, k.err) {
			kind = k.k
			break
		}
	}
	b = append(b, kind)
	return appendString(b, err.Error())
}

func readError(body []byte) error {
	r := reader{b: body}
	kind := r.byte()
	if kind == kindRejected {
		rej := &script.RejectedError{Codec: r.string(), Func: r.string()}
		if n := r.count(1); n > 0 {
			rej.Messages = make([]string, n)
			for i := range rej.Messages {
				rej.Messages[i] = r.string()
			}
		}
		if err := r.end(); err != nil {
			return err
		}
		return rej
	}
	msg := r.string()
	if err := r.end(); err != nil {
		return err
	}
	e := &remoteError{msg: msg}
	switch kind {
	case kindTimeout:
		e.kind = script.ErrTimeout
	case kindCodec:
		e.kind = script.ErrCodec
	case kindLoad:
		e.kind = script.ErrLoad
	case kindInvalid:
		e.kind = decoders.ErrInvalid
	case kindTruncated:
		e.kind = decoders.ErrTruncated
	}
	return e
}

// remoteError is an error a worker reported, with the sentinel it
// matched there.
type remoteError struct {
	kind error // nil: none
	msg  string
}

func (e *remoteError) Error() string        { return e.msg }
func (e *remoteError) Is(target error) bool { return e.kind != nil && target == e.kind }
