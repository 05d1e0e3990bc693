package main

import (
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestEvaluate(t *testing.T) {
	rows := []Row{
		{Config: "mtmd", ImageTokens: 576, EncodeMS: 3400, PrefillMS: 9600, TTFTMS: 13000, KVImageMiB: 72},
		{Config: "none", ImageTokens: 576, EncodeMS: 3400, PrefillMS: 9600, TTFTMS: 13500, KVImageMiB: 72},
		{Config: "hiprune-64", ImageTokens: 64, EncodeMS: 3400, SelectMS: 0.2, PrefillMS: 1000, TTFTMS: 4500, KVImageMiB: 8},
		{Config: "hiprune-128", ImageTokens: 128, EncodeMS: 3400, SelectMS: 1.5, PrefillMS: 2000, TTFTMS: 5300, KVImageMiB: 17},
	}
	floors, targets := evaluate(rows, []int{128, 64})
	if len(floors) != 2 || floors[0].Config != "hiprune-128" || floors[1].FloorMS != 4400 {
		t.Fatalf("floors = %+v", floors)
	}
	want := map[string]bool{
		"(a) none ttft within 5% of mtmd":         true, // x1.038
		"(b) hiprune-128 ttft within 5% of floor": true, // 5300 vs floor 3400+2000
		"(c) hiprune-128 select under 1 ms":       false,
		"(d) hiprune-128 kv proportional to N'":   false, // 17/72 vs 128/576
		"(b) hiprune-64 ttft within 5% of floor":  true,  // 4500 vs floor 4400: x1.023
		"(c) hiprune-64 select under 1 ms":        true,
		"(d) hiprune-64 kv proportional to N'":    true,
	}
	if len(targets) != len(want) {
		t.Fatalf("got %d targets, want %d: %+v", len(targets), len(want), targets)
	}
	for _, tg := range targets {
		if w, ok := want[tg.Name]; !ok || w != tg.OK {
			t.Errorf("%s: ok=%v (%s), want %v", tg.Name, tg.OK, tg.Detail, w)
		}
	}
}

func TestMedianRow(t *testing.T) {
	ms := func(x int) time.Duration { return time.Duration(x) * time.Millisecond }
	rs := rowSamples{name: "none", samples: []sample{
		{ImageTokens: 576, TTFT: ms(100), Encode: ms(10), KVImageBytes: 72 << 20},
		{ImageTokens: 576, TTFT: ms(300), Encode: ms(30), KVImageBytes: 72 << 20},
		{ImageTokens: 576, TTFT: ms(200), Encode: ms(20), KVImageBytes: 72 << 20},
	}}
	r := medianRow(rs)
	if r.TTFTMS != 200 || r.EncodeMS != 20 || r.KVImageMiB != 72 || r.ImageTokens != 576 || len(r.TTFTRunsMS) != 3 {
		t.Fatalf("row = %+v", r)
	}
}
