package decoders

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The wire form of a Record carries a decoder's output between processes
// (JavaScript codecs run in worker processes, see decoders/sandbox)
// without building the map: a count, then per node its parent index + 1,
// its kind, its key and its value. It is compact and cheap to write and
// read; it is not a storage format and has no version.

// AppendWire appends r's wire form to b.
func (r *Record) AppendWire(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(r.Len()))
	if r == nil {
		return b
	}
	for i := range r.nodes {
		n := &r.nodes[i]
		b = binary.AppendUvarint(b, uint64(n.parent+1))
		b = append(b, byte(n.kind))
		b = appendWireString(b, n.key)
		switch n.kind {
		case NumberValue:
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(n.num))
		case StringValue:
			b = appendWireString(b, n.str)
		case BoolValue:
			if n.b {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		}
	}
	return b
}

func appendWireString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// errWire is a wire form that is cut short or inconsistent.
var errWire = errors.New("decoders: malformed record wire form")

// ReadWire appends the values of a wire form at the start of b to r (an
// empty record, normally) and returns what follows it. It checks what
// Map, Flat and Lookup rely on: every parent is an open container that
// comes earlier, and a container's members follow it contiguously. At
// most maxNodes nodes are accepted, so a record cannot grow beyond what
// the sender was allowed to produce.
func (r *Record) ReadWire(b []byte, maxNodes int) ([]byte, error) {
	count, b, err := wireUvarint(b)
	if err != nil {
		return nil, err
	}
	if count > uint64(maxNodes) || count > uint64(len(b)) { // each node takes at least 3 bytes
		return nil, fmt.Errorf("%w: %d values, more than allowed (%d) or than the bytes hold", errWire, count, maxNodes)
	}
	base := int32(len(r.nodes))
	// open is the chain of containers a new node may belong to,
	// innermost last; -1 (the top) is always at the bottom.
	open := []int32{-1}
	for range count {
		var p uint64
		if p, b, err = wireUvarint(b); err != nil {
			return nil, err
		}
		if len(b) < 1 {
			return nil, errWire
		}
		kind := ValueKind(b[0])
		b = b[1:]
		var key, str string
		if key, b, err = wireString(b); err != nil {
			return nil, err
		}
		var num float64
		var flag bool
		switch kind {
		case Null, kindObject, kindArray:
		case NumberValue:
			if len(b) < 8 {
				return nil, errWire
			}
			num = math.Float64frombits(binary.LittleEndian.Uint64(b))
			b = b[8:]
		case StringValue:
			if str, b, err = wireString(b); err != nil {
				return nil, err
			}
		case BoolValue:
			if len(b) < 1 || b[0] > 1 {
				return nil, errWire
			}
			flag, b = b[0] == 1, b[1:]
		default:
			return nil, fmt.Errorf("%w: value kind %d", errWire, kind)
		}
		parent := int32(-1)
		if p > 0 {
			if p > count {
				return nil, fmt.Errorf("%w: parent %d out of range", errWire, p-1)
			}
			parent = base + int32(p-1)
		}
		for len(open) > 0 && open[len(open)-1] != parent {
			open = open[:len(open)-1]
		}
		if len(open) == 0 {
			return nil, fmt.Errorf("%w: value %d is not inside an open container", errWire, len(r.nodes))
		}
		r.nodes = append(r.nodes, node{key: key, num: num, str: str, parent: parent, kind: kind, b: flag})
		if kind == kindObject || kind == kindArray {
			open = append(open, int32(len(r.nodes)-1))
		}
	}
	r.open = 0
	return b, nil
}

func wireUvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, errWire
	}
	return v, b[n:], nil
}

func wireString(b []byte) (string, []byte, error) {
	n, b, err := wireUvarint(b)
	if err != nil {
		return "", nil, err
	}
	if n > uint64(len(b)) {
		return "", nil, errWire
	}
	return string(b[:n]), b[n:], nil
}
