package gateway

import (
	"context"
	"time"
)

// FieldKind is the InfluxDB type of a field value.
type FieldKind uint8

// Field kinds.
const (
	Float FieldKind = iota + 1
	Int
	Bool
	String
)

// Field is one typed field value; only the member for Kind is meaningful.
// A struct rather than an interface keeps field values off the heap on the
// hot path.
type Field struct {
	Key  string
	Kind FieldKind
	F    float64
	I    int64
	S    string
	B    bool
}

// FloatField, IntField, BoolField and StringField build fields.
func FloatField(k string, v float64) Field { return Field{Key: k, Kind: Float, F: v} }
func IntField(k string, v int64) Field     { return Field{Key: k, Kind: Int, I: v} }
func BoolField(k string, v bool) Field     { return Field{Key: k, Kind: Bool, B: v} }
func StringField(k string, v string) Field { return Field{Key: k, Kind: String, S: v} }

// Tag is one tag key and value.
type Tag struct{ Key, Value string }

// Point is one InfluxDB point. Tags and Fields are sorted by key, so the
// same uplink always encodes to the same bytes and a redelivery overwrites
// instead of doubling.
type Point struct {
	Measurement string
	Tags        []Tag
	Fields      []Field
	Time        time.Time
}

// Sink stores points durably. Write returns nil only when the points are
// stored (or spooled); it blocks under backpressure until ctx ends.
//
// Write must not retain pts, their tags or their fields: they are the
// caller's again when Write returns (the pipeline reuses their memory for
// the next uplink). A Sink that keeps points copies them.
type Sink interface {
	Write(ctx context.Context, pts []Point) error
}
