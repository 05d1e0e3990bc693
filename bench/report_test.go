package main

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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
	floors, targets := evaluate(rows, []prunedRow{{"hiprune-128", 128}, {"hiprune-64", 64}})
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

// A Qwen2.5-VL row's budget is a ratio: its N' is the tokens it kept.
func TestEvaluateRatioRows(t *testing.T) {
	rows := []Row{
		{Config: "mtmd", ImageTokens: 1369, EncodeMS: 60000, PrefillMS: 90000, TTFTMS: 150000, KVImageMiB: 48.125},
		{Config: "hiprune-r0.334", ImageTokens: 457, EncodeMS: 61000, PrefillMS: 30000, TTFTMS: 93000, KVImageMiB: 16.0654},
	}
	floors, targets := evaluate(rows, []prunedRow{{name: "hiprune-r0.334"}})
	if len(floors) != 1 || floors[0].Keep != 457 || floors[0].FloorMS != 90000 {
		t.Fatalf("floors = %+v", floors)
	}
	for _, tg := range targets {
		if !tg.OK && tg.Name != "(b) hiprune-r0.334 ttft within 5% of floor" {
			t.Errorf("%s: %s", tg.Name, tg.Detail)
		}
	}
}

func TestParseFlagsQwen(t *testing.T) {
	o, err := parseFlags([]string{"-model", "qwen3b"})
	if err != nil {
		t.Fatal(err)
	}
	if !o.qwen || o.imgW != 1024 || o.imgH != 1024 || len(o.keeps) != 0 || o.runs != 3 || o.encRuns != 3 {
		t.Fatalf("options = %+v", o)
	}
	if want := []float64{0.334, 0.223, 0.112}; len(o.ratios) != 3 || o.ratios[0] != want[0] || o.ratios[2] != want[2] {
		t.Fatalf("ratios = %v, want %v", o.ratios, want)
	}
	for _, bad := range [][]string{{"-model", "qwen3b", "-keep", "64"}, {"-model", "1b", "-keep-ratio", "0.5"},
		{"-model", "qwen3b", "-keep-ratio", "1.5"}} {
		if _, err := parseFlags(bad); !errors.Is(err, errUsage) {
			t.Errorf("%v: err = %v, want a usage error", bad, err)
		}
	}
	o, err = parseFlags([]string{"-model", "gemma4b"})
	if err != nil || !o.gemma || o.qwen || !slices.Equal(o.keeps, []int{85, 64, 32}) || o.runs != 3 || o.encRuns != 3 {
		t.Fatalf("gemma4b options = %+v, %v", o, err)
	}
	o, err = parseFlags([]string{"-model", "1b"})
	if err != nil || o.gemma || o.qwen || len(o.keeps) != 3 || len(o.ratios) != 0 || o.imgW != 640 || o.encRuns != 5 {
		t.Fatalf("1b options = %+v, %v", o, err)
	}
}

func TestPrintRepack(t *testing.T) {
	rep := &Report{Rows: []Row{
		{Config: "none", PrefillMS: 9000, TTFTMS: 13000, DecodeTPS: 21},
		{Config: plainName, PrefillMS: 12000, TTFTMS: 16250, DecodeTPS: 17.5},
	}}
	var b strings.Builder
	rep.printRepack(&b)
	assert.Contains(t, b.String(), "prefill 9000 vs 12000 ms (x0.750)")
	assert.Contains(t, b.String(), "time to first token 13000 vs 16250 ms (x0.800)")
	assert.Contains(t, b.String(), "decode 21.00 vs 17.50 tok/s (x1.200)")

	// Without the plain row (-no-repack, or no extra buffer types): nothing.
	b.Reset()
	(&Report{Rows: rep.Rows[:1]}).printRepack(&b)
	assert.Empty(t, b.String())
}

func TestVsOurs(t *testing.T) {
	ms, ratio, runs := vsOurs([]float64{30, 10, 20}, 40)
	assert.Equal(t, 20.0, ms)
	assert.Equal(t, 0.5, ratio)
	assert.Equal(t, []float64{30, 10, 20}, runs)
	for _, tc := range []struct {
		runs []float64
		ours float64
	}{{nil, 40}, {[]float64{10}, 0}} {
		ms, ratio, runs = vsOurs(tc.runs, tc.ours)
		assert.Zero(t, ms)
		assert.Zero(t, ratio)
		assert.Nil(t, runs)
	}
}
