package httpapi

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
)

// TestDeadLettersStreamed: the listing is written letter by letter and is
// the same JSON document as before: empty, all (limit=0), or a page.
func TestDeadLettersStreamed(t *testing.T) {
	f := newFixture(t)
	bearer := "Bearer " + token
	list := func(path string) (ids []uint64, count, limit int) {
		t.Helper()
		rec := f.do(t, "GET", path, bearer, "", nil)
		var resp struct {
			DeadLetters []struct {
				ID  uint64 `json:"id"`
				Raw []byte `json:"raw"`
			} `json:"dead_letters"`
			Count int `json:"count"`
			Limit int `json:"limit"`
		}
		if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json; charset=utf-8" || json.Unmarshal(rec.Body.Bytes(), &resp) != nil || resp.DeadLetters == nil {
			t.Fatalf("%s: %d %q", path, rec.Code, rec.Body.String())
		}
		for _, l := range resp.DeadLetters {
			if string(l.Raw) != "{}" {
				t.Fatalf("%s: letter %d raw %q", path, l.ID, l.Raw)
			}
			ids = append(ids, l.ID)
		}
		return ids, resp.Count, resp.Limit
	}
	if ids, count, limit := list("/api/v1/deadletters"); len(ids) != 0 || count != 0 || limit != defaultListLimit {
		t.Fatalf("empty store: %v %d %d", ids, count, limit)
	}
	const n = 2500
	ctx := context.Background()
	for i := range n {
		if err := f.dl.Put(ctx, gateway.DeadLetter{Time: now.Add(time.Duration(i) * time.Second), Source: "cs", Reason: gateway.ReasonMalformed, Raw: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	ids, count, limit := list("/api/v1/deadletters?limit=0")
	if len(ids) != n || count != n || limit != 0 || ids[0] != 1 || ids[n-1] != n {
		t.Fatalf("all: %d letters, count %d, limit %d", len(ids), count, limit)
	}
	ids, count, _ = list("/api/v1/deadletters?order=newest&limit=2")
	if len(ids) != 2 || count != 2 || ids[0] != n || ids[1] != n-1 {
		t.Fatalf("newest 2: %v, count %d", ids, count)
	}
	// Paging with next_cursor, both ways, gives every letter once, in
	// order.
	for _, order := range []string{"oldest", "newest"} {
		var all []uint64
		cursor := ""
		for {
			rec := f.do(t, "GET", "/api/v1/deadletters?limit=700&order="+order+"&cursor="+cursor, bearer, "", nil)
			var resp struct {
				DeadLetters []struct {
					ID uint64 `json:"id"`
				} `json:"dead_letters"`
				NextCursor string `json:"next_cursor"`
			}
			if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &resp) != nil {
				t.Fatalf("%s page: %d %s", order, rec.Code, rec.Body)
			}
			for _, l := range resp.DeadLetters {
				all = append(all, l.ID)
			}
			if cursor = resp.NextCursor; cursor == "" {
				break
			}
		}
		if len(all) != n {
			t.Fatalf("%s: paged %d letters, want %d", order, len(all), n)
		}
		for i, id := range all {
			want := uint64(i + 1)
			if order == "newest" {
				want = uint64(n - i)
			}
			if id != want {
				t.Fatalf("%s: letter %d is %d, want %d", order, i, id, want)
			}
		}
	}
}
