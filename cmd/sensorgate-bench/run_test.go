package main

import "testing"

func TestNewestSince(t *testing.T) {
	for _, c := range []struct {
		name      string
		times     []int64
		k         int
		since     int64
		wantCount int
	}{
		{"none", nil, 3, 0, 0},
		{"fewer than k", []int64{5, 1, 3}, 10, 1, 3},
		{"in order", []int64{1, 2, 3, 4, 5}, 2, 4, 2},
		{"out of order", []int64{5, 2, 4, 1, 3}, 2, 4, 2},
		{"ties at the cut", []int64{1, 3, 3, 3, 5}, 2, 3, 4},
	} {
		since, n := newestSince(c.times, c.k)
		if since != c.since || n != c.wantCount {
			t.Errorf("%s: newestSince(%v, %d) = %d, %d; want %d, %d", c.name, c.times, c.k, since, n, c.since, c.wantCount)
		}
	}
}
