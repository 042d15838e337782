package sandbox

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/decoders"
)

// fuzzHello is the hello a fuzzed worker starts with: small limits, so
// a fuzzed codec cannot hold the fuzzer long.
var fuzzHello = hello{ScriptTimeout: 10 * time.Millisecond, MaxOutput: 64 << 10, MaxRequest: 64 << 10}

func frame(typ byte, body []byte) []byte {
	b := beginFrame(nil, typ)
	b = append(b, body...)
	_ = writeFrame(io.Discard, b) // fills in the length
	return b
}

// FuzzWorkerFrames feeds a worker random requests after its hello: it
// must answer within the protocol or stop, never panic or hang. (The
// memory limit is the process's, so this worker runs without it.)
func FuzzWorkerFrames(f *testing.F) {
	src := readCodec(f, filepath.Join(codecsDir, "elsys-ers-co2.js"))
	s := sum(src)
	load := frame(reqLoad, appendLoad(nil, s, "elsys-ers-co2.js", src))
	dec := frame(reqDecode, appendDecode(nil, s, elsysIn, nil))
	f.Add(append(append([]byte{}, load...), dec...))
	f.Add(dec)
	batch := frame(reqBatch, appendBatch(nil, s, []decoders.Input{elsysIn, {FPort: 9, Bytes: []byte{1}}, elsysIn}, nil))
	f.Add(append(append([]byte{}, load...), batch...))
	f.Add(frame(reqLoad, appendLoad(nil, s, "x.js", []byte("function decodeUplink(i){ for(;;){} }"))))
	f.Add(frame(reqLoad, appendLoad(nil, s, "x.js", []byte("syntax error ("))))
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f, 3})
	f.Add([]byte{1, 0, 0, 0, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		in := append(frame(reqHello, appendHello(nil, fuzzHello)), b...)
		var out bytes.Buffer
		done := make(chan error, 1)
		go func() { done <- serve(bytes.NewReader(in), &out, io.Discard, func(int64) error { return nil }) }()
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("serve returned nil; it ends only with an error (EOF at least)")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("worker did not finish its input")
		}
		// Every answer is a well-formed frame within the output limit.
		rd := bytes.NewReader(out.Bytes())
		for rd.Len() > 0 {
			typ, body, _, err := readFrame(rd, nil, fuzzHello.MaxOutput+frameHeader)
			if err != nil {
				t.Fatalf("answer: %v", err)
			}
			switch typ {
			case ansReady, ansLoaded:
			case ansResult:
				res, err := readResult(body, maxNodes(fuzzHello.MaxOutput))
				if err != nil {
					t.Fatalf("result: %v", err)
				}
				res.Record.Release()
			case ansError:
				if err := readError(body); errors.Is(err, errFrame) {
					t.Fatalf("error answer: %v", err)
				}
			default:
				t.Fatalf("answer type %d", typ)
			}
		}
	})
}

// FuzzAnswers feeds the daemon's parsers random answer bodies: they
// return an error or a value, never panic, and a result stays within
// its value bound.
func FuzzAnswers(f *testing.F) {
	rec := decoders.NewRecord(0)
	rec.Number("t", 1)
	rec.Object("o")
	rec.String("s", "x")
	rec.End()
	f.Add(appendResult(nil, decoders.Result{Record: rec, Warnings: []string{"w"},
		Samples: []decoders.Sample{{Quantity: "air.temperature", Value: decoders.NumberVal(1), Time: time.Unix(5, 0), Key: "t"}}}))
	f.Add(appendError(nil, errors.New("boom")))
	f.Add(appendLoaded(nil, 1, true))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		if res, err := readResult(body, 50); err == nil {
			if res.Record.Len() > 50 {
				t.Fatalf("%d values, bound 50", res.Record.Len())
			}
			_ = res.Record.Map()
			res.Record.Release()
		}
		_ = readError(body)
		_, _, _ = readLoaded(body)
		_, _ = readHello(body)
		_, _, _ = readDecode(body)
		_, _, _, _ = readLoad(body)
	})
}

// snippets are the pieces FuzzHostileSnippets builds codecs from: each
// hostile in its own way, or harmless.
var snippets = []string{
	`for(;;){}`,
	`/^(a+)+(?=b)$/.test(new Array(30).join("a")+"!");`,
	`/^(a|aa)+\1c$/.test(new Array(28).join("a")+"!");`,
	`var a=new Array(1e9).fill(1);`,
	`var s="x".repeat(1<<30);`,
	`function r(n){return r(n+1)+1} r(0);`,
	`try{for(;;){}}catch(e){}finally{for(;;){}}`,
	`var big={}; for(var i=0;i<3000;i++){big["k"+i]=new Array(200).join("z")} out.big=big;`,
	`Object.defineProperty(out,"g",{enumerable:true,get:function(){while(true){}}});`,
	`var l=[]; for(var i=0;i<1e6;i++){l.push({i:i})}`,
	`out.n=input.bytes.length;`,
	`throw new Error("no");`,
	`return {errors:["refused"]};`,
}

// FuzzHostileSnippets runs codecs made of random sequences of snippets
// in real workers: every call ends (data or an error) within the limits,
// and a good codec decodes on the same pool afterwards.
func FuzzHostileSnippets(f *testing.F) {
	for i := range snippets {
		f.Add([]byte{byte(i)})
	}
	f.Add([]byte{10, 0})
	f.Add([]byte{7, 8})
	// Limits with room for a loaded machine: the good codec must not
	// time out for the CPU the fuzzer itself takes.
	cfg := Config{Workers: 1, CallTimeout: 600 * time.Millisecond, ScriptTimeout: 200 * time.Millisecond}
	p := newPool(f, cfg)
	good := load(f, p, filepath.Join(codecsDir, "elsys-ers-co2.js"))
	f.Fuzz(func(t *testing.T, pick []byte) {
		if len(pick) == 0 || len(pick) > 4 {
			return
		}
		var body strings.Builder
		for _, b := range pick {
			body.WriteString(snippets[int(b)%len(snippets)])
			body.WriteByte('\n')
		}
		src := "function decodeUplink(input){ var out={}; " + body.String() + " return {data: out}; }"
		c, err := p.Load("fuzz.js", []byte(src))
		if err != nil {
			t.Fatalf("load: %v", err) // the snippets only run when called
		}
		start := time.Now()
		res, err := c.Decode(elsysIn)
		// A call runs at most CallTimeout; before it, it may wait for the
		// replacement of a worker the previous input had killed (a start
		// is bounded by spawnTimeout); after it come the kill and the
		// reaping.
		if took := time.Since(start); took > cfg.CallTimeout+spawnTimeout+time.Second {
			t.Fatalf("call took %v: %v", took, err)
		}
		if err == nil {
			res.Record.Release()
		}
		if _, err := good.Decode(elsysIn); err != nil {
			t.Fatalf("good codec after %q: %v", src, err)
		}
	})
}
