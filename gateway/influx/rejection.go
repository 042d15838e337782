package influx

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/gateway"
)

// refusal is InfluxDB's 400 or 422 for a write request: some or all of
// its lines were refused for good. errors.Is(err, ErrRejected) holds.
type refusal struct {
	status int
	msg    string
	// all says InfluxDB refused every line of the request: its
	// partial-write count reached the request's lines, so there is no
	// accepted line to tell apart and nothing to send again.
	all bool
	// mixed says the request held several records and InfluxDB refused
	// some of its lines, not all: which records it took is not known
	// until the sorting lane finds out.
	mixed bool
}

func (r *refusal) Error() string {
	return fmt.Sprintf("%s (%d): %s", ErrRejected.Error(), r.status, r.msg)
}

func (r *refusal) Is(target error) bool {
	return target == ErrRejected || target == gateway.ErrRejected
}

// maxErrorHeader is how much of an error InfluxDB 1.8 puts in its
// X-Influxdb-Error header, which is where the client library takes 1.8's
// message from. A message this long may have been cut, so its end is
// not trusted.
const maxErrorHeader = 1024

// droppedCount reads how many points InfluxDB says it dropped from a
// partial write. InfluxDB 1.8 answers 400 "partial write: <first reason>
// dropped=N" (2.x: 422, the same text inside its message) after storing
// every other point of the request; N counts the points refused by field
// type conflicts, max-values-per-tag, retention and the like, but not
// the lines it could not parse (those come as "dropped=0"), and with
// points in several shards only the first failing shard's. So N is at
// most the lines refused: when it reaches the request's lines, all of
// them were refused. ok is false when the message does not end in a
// count (another error, or a message cut short).
func droppedCount(msg string) (n int, ok bool) {
	if len(msg) >= maxErrorHeader || !strings.Contains(msg, "partial write") {
		return 0, false
	}
	msg = strings.TrimRight(msg, " \r\n")
	i := strings.LastIndex(msg, " dropped=")
	if i < 0 {
		return 0, false
	}
	digits := msg[i+len(" dropped="):]
	if digits == "" || len(digits) > 9 {
		return 0, false
	}
	for _, c := range []byte(digits) {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(digits)
	if err != nil {
		return 0, false
	}
	return n, true
}

// refusalLog writes refused records to the log at most once per period:
// the first refusal after a quiet period at once, with its details, and
// then one summary per period while refusals go on ("N records refused in
// the last 10s, first: ..."). A flood of refused records (a field type
// conflict, a series limit reached) otherwise logs a line per record.
type refusalLog struct {
	log   zerolog.Logger
	every time.Duration

	mu     sync.Mutex
	timer  *time.Timer // runs while a period is open
	n      int         // refused since the period began
	first  refusedRecord
	closed bool
}

// refusedRecord describes one refused record for the log.
type refusedRecord struct {
	source, devEUI string
	lines          int
	err            error
}

func (r refusedRecord) fields(ev *zerolog.Event) *zerolog.Event {
	if r.source != "" {
		ev = ev.Str("source", r.source)
	}
	if r.devEUI != "" {
		ev = ev.Str("dev_eui", r.devEUI)
	}
	return ev.Int("points", r.lines).AnErr("error", r.err)
}

// refusalPeriod is how often refused records are summed up in the log.
const refusalPeriod = 10 * time.Second

func newRefusalLog(log zerolog.Logger, every time.Duration) *refusalLog {
	return &refusalLog{log: log, every: every}
}

// add counts one refused record, logging it or leaving it to the summary.
func (l *refusalLog) add(r refusedRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		r.fields(l.log.Warn()).Msg("InfluxDB refused a record for good; it is kept as a dead letter")
		return
	}
	if l.timer == nil {
		r.fields(l.log.Warn()).Stringer("summary_every", l.every).
			Msg("InfluxDB refused a record for good; it is kept as a dead letter (further refusals are summed up periodically)")
		l.timer = time.AfterFunc(l.every, l.flush)
		return
	}
	if l.n == 0 {
		l.first = r
	}
	l.n++
}

// flush logs the period's summary and opens the next period, or ends
// them when nothing was refused in this one.
func (l *refusalLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	if l.n == 0 {
		l.timer = nil
		return
	}
	l.summary()
	l.timer = time.AfterFunc(l.every, l.flush)
}

func (l *refusalLog) summary() {
	l.first.fields(l.log.Warn().Int("records", l.n).Stringer("period", l.every)).
		Msgf("%d records refused by InfluxDB in the last %s, kept as dead letters; first: %v", l.n, l.every, l.first.err)
	l.n = 0
}

// close logs what the open period holds and stops summing up.
func (l *refusalLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	if l.timer != nil {
		l.timer.Stop()
	}
	if l.n > 0 {
		l.summary()
	}
}
