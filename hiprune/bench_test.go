package hiprune_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/hiprune/hiprune-go/hiprune"
)

func benchScores(n int) (object, deep []float32) {
	rng := rand.New(rand.NewPCG(7, 11))
	object = make([]float32, n)
	deep = make([]float32, n)
	for i := range object {
		object[i] = rng.Float32()
		deep[i] = rng.Float32()
	}
	return object, deep
}

func benchSelect(b *testing.B, w, h int, budgets []int) {
	object, deep := benchScores(w * h)
	for _, budget := range budgets {
		cfg := hiprune.Config{Budget: budget, Alpha: hiprune.DefaultAlpha}
		b.Run(fmt.Sprintf("budget=%d", budget), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := hiprune.Select(object, deep, w, h, cfg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("budget=%d/Selector", budget), func(b *testing.B) {
			b.ReportAllocs()
			var s hiprune.Selector
			dst := make([]int, 0, budget)
			for b.Loop() {
				var err error
				if dst, err = s.Append(dst[:0], object, deep, w, h, cfg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSelect576(b *testing.B) { benchSelect(b, 24, 24, []int{64, 192}) }

// 2880 = 5 tiles of 576, arranged as a 48 x 60 grid.
func BenchmarkSelect2880(b *testing.B) { benchSelect(b, 48, 60, []int{320, 960}) }

// Alpha 1 spends the whole budget on anchors and buffers (the most anchors).
func BenchmarkSelect576Alpha1(b *testing.B) {
	object, deep := benchScores(576)
	cfg := hiprune.Config{Budget: 192, Alpha: 1}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := hiprune.Select(object, deep, 24, 24, cfg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkScores(b *testing.B) {
	const heads, tokens = 16, 577
	rng := rand.New(rand.NewPCG(3, 5))
	attn := make([]float32, heads*tokens*tokens)
	for i := range attn {
		attn[i] = rng.Float32() / tokens
	}
	b.SetBytes(int64(len(attn) * 4))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := hiprune.Scores(attn, heads, tokens, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUniform(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_, _ = hiprune.Uniform(576, 192)
	}
}

func BenchmarkRandom(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_, _ = hiprune.Random(576, 192, 42)
	}
}
