package main

import (
	"context"
	"fmt"
	"time"

	"github.com/hiprune/hiprune-go/llava"
)

// Turn 2 of a conversation as an OpenAI-style client sends it: the whole
// conversation again, image included, plus a new question. Measured three
// ways, alternated: turn 1 (the image is new), turn 2 as a server without
// reuse answers it (Reset, then everything evaluated again and the image
// encoded again), and turn 2 as chat serve answers it (Session.Sync keeps
// the slot's KV prefix, the image cache holds the pruned rows).

// Resend is the report's turn-2 section (medians).
type Resend struct {
	Config      string  `json:"config"`
	Turn1TTFTMS float64 `json:"turn1_ttft_ms"`
	// FreshTTFTMS: turn 2 from an empty context; ReuseTTFTMS: with Sync.
	FreshTTFTMS float64 `json:"turn2_fresh_ttft_ms"`
	ReuseTTFTMS float64 `json:"turn2_reuse_ttft_ms"`
	// ReusedTokens kept from turn 1; EvaluatedTokens evaluated for turn 2;
	// Encodes is how often turn 2 ran the vision encoder (all runs).
	ReusedTokens    int   `json:"turn2_reused_tokens"`
	EvaluatedTokens int   `json:"turn2_evaluated_tokens"`
	Encodes         int64 `json:"turn2_encodes"`
}

const secondQuestion = "What else can you see?"

// resend measures turn 2 for each pruning configuration in opts.
func (b *bench) resend(ctx context.Context, names []string, opts []llava.Options, lmPath string) ([]Resend, error) {
	// A pipeline of its own, with the image cache on: the other rows
	// measure the encoder every time.
	cached, err := llava.Open(ctx, llava.Config{Model: lmPath, MMProj: b.mmPath, Threads: b.o.threads, ImageCacheBytes: 256 << 20})
	if err != nil {
		return nil, err
	}
	defer cached.Close()
	sess, err := cached.NewSession(llava.SessionConfig{NCtx: b.o.nCtx, NBatch: b.o.nBatch, Template: "llava"})
	if err != nil {
		return nil, err
	}
	out := make([]Resend, len(opts))
	for i, o := range opts {
		var t1, fresh, reuse []float64
		out[i].Config = names[i]
		for r := range b.o.runs {
			// A new image each run (one pixel changed), so turn 1 encodes.
			img := b.variant(r + 1 + i*b.o.runs)
			if err := sess.Reset(); err != nil {
				return nil, err
			}
			start := time.Now()
			if _, err := sess.Sync(ctx, nil, o); err != nil {
				return nil, err
			}
			syncTime := time.Since(start)
			a1, st1, err := sess.Ask(ctx, llava.Turn{Text: b.ourText, Images: []*llava.Image{img}, Prune: o, Gen: b.gen()})
			if err != nil {
				return nil, fmt.Errorf("turn 1: %w", err)
			}
			t1 = append(t1, ms(syncTime+st1.TTFT))
			history := []llava.Message{{Role: llava.RoleUser, Text: b.ourText, Images: []*llava.Image{img}}, {Role: llava.RoleAssistant, Text: a1}}
			turn2 := llava.Turn{Text: secondQuestion, Prune: o, Gen: b.gen()}

			// Without reuse: what chat serve did before, and what a server
			// that resets its slot does.
			if err := b.sess.Reset(); err != nil {
				return nil, err
			}
			start = time.Now()
			if _, err := b.sess.Append(ctx, history, o); err != nil {
				return nil, err
			}
			appendTime := time.Since(start)
			_, stF, err := b.sess.Ask(ctx, turn2)
			if err != nil {
				return nil, err
			}
			fresh = append(fresh, ms(appendTime+stF.TTFT))

			enc := cached.CacheStats().Encodes
			start = time.Now()
			sy, err := sess.Sync(ctx, history, o)
			if err != nil {
				return nil, err
			}
			syncTime = time.Since(start)
			_, st2, err := sess.Ask(ctx, turn2)
			if err != nil {
				return nil, err
			}
			reuse = append(reuse, ms(syncTime+st2.TTFT))
			out[i].ReusedTokens = sy.ReusedTokens
			out[i].EvaluatedTokens = sy.TextTokens + sy.ImageTokens + st2.TextTokens + st2.ImageTokens
			out[i].Encodes += cached.CacheStats().Encodes - enc
			b.log.Info("resend", "config", names[i], "run", r+1, "turn1_ttft_ms", fmt.Sprintf("%.0f", t1[len(t1)-1]),
				"turn2_fresh_ttft_ms", fmt.Sprintf("%.0f", fresh[len(fresh)-1]), "turn2_reuse_ttft_ms", fmt.Sprintf("%.0f", reuse[len(reuse)-1]),
				"reused_tokens", sy.ReusedTokens, "evaluated_tokens", out[i].EvaluatedTokens)
		}
		out[i].Turn1TTFTMS, out[i].FreshTTFTMS, out[i].ReuseTTFTMS = median(t1), median(fresh), median(reuse)
	}
	return out, nil
}

// variant is the sample image with one pixel changed by k: new bytes, the
// same picture for the model's purposes.
func (b *bench) variant(k int) *llava.Image {
	rgb := *b.img.RGB
	rgb.Pix = append([]byte(nil), b.img.RGB.Pix...)
	rgb.Pix[0] ^= byte(k)
	return &llava.Image{Name: b.img.Name, RGB: &rgb}
}
