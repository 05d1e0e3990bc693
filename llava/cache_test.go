package llava_test

import (
	"bytes"
	"context"
	"image/png"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/llava"
	"github.com/hiprune/hiprune-go/llava/imageprep"
	"github.com/hiprune/hiprune-go/tests/fixture"
)

// openCached opens the tiny pair with an image cache of max bytes.
func openCached(t *testing.T, max int64) *llava.Pipeline {
	t.Helper()
	lm, mm := fixture.Pair(t, "tiny")
	p, err := llava.Open(context.Background(), llava.Config{Model: lm, MMProj: mm, Threads: 1, ImageCacheBytes: max})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

// pngImage decodes a PNG of a fixture image as a client would send it.
func pngImage(t *testing.T, seed uint64) (*llava.Image, []byte) {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, fixture.Image(t, 500, 375, seed).ToImage()))
	img, err := llava.DecodeImage("sent.png", bytes.NewReader(buf.Bytes()), imageprep.Limits{})
	require.NoError(t, err)
	return img, buf.Bytes()
}

// The same image bytes, decoded again for each request, are encoded once
// per set of pruning options; the cached rows are the encoder's.
func TestImageCacheEncodesOnce(t *testing.T) {
	p := openCached(t, 64<<20)
	ctx := context.Background()
	_, data := pngImage(t, 1)
	decode := func() *llava.Image {
		img, err := llava.DecodeImage("again.png", bytes.NewReader(data), imageprep.Limits{})
		require.NoError(t, err)
		return img
	}
	ask := func(o llava.Options) *llava.Stats {
		s := session(t, p)
		r, err := s.Prefill(ctx, llava.Turn{Text: question, Images: []*llava.Image{decode()}, Prune: o, Gen: greedy})
		require.NoError(t, err)
		return &r.Stats
	}
	st := ask(llava.Options{Keep: 64})
	assert.False(t, st.Images[0].Cached)
	assert.Positive(t, st.Images[0].Encode)
	assert.Equal(t, int64(1), p.CacheStats().Encodes)

	st = ask(llava.Options{Keep: 64})
	assert.True(t, st.Images[0].Cached)
	assert.Zero(t, st.Images[0].Encode)
	assert.Equal(t, 64, st.ImageTokens)
	cs := p.CacheStats()
	assert.Equal(t, int64(1), cs.Encodes, "a second request for the same image does not run the encoder")
	assert.Equal(t, int64(1), cs.Hits)
	assert.Equal(t, 1, cs.Entries)

	// Other options are other rows.
	ask(llava.Options{Keep: 32})
	ask(llava.Options{Keep: 64, Method: llava.MethodUniform})
	assert.Equal(t, int64(3), p.CacheStats().Encodes)
	assert.Equal(t, 3, p.CacheStats().Entries)

	// What the cache returns is what the encoder gives.
	e, err := p.Encode(ctx, decode(), 0)
	require.NoError(t, err)
	defer e.Release()
	want, err := p.Prune(context.Background(), e, llava.Options{Keep: 64})
	require.NoError(t, err)
	s1, s2 := session(t, p), session(t, p)
	_, err = s1.Prefill(ctx, llava.Turn{Text: question, Prepared: []*llava.Pruned{want}, Gen: greedy})
	require.NoError(t, err)
	_, err = s2.Prefill(ctx, llava.Turn{Text: question, Images: []*llava.Image{decode()}, Prune: llava.Options{Keep: 64}, Gen: greedy})
	require.NoError(t, err)
	assert.Equal(t, s1.Context().Logits(), s2.Context().Logits())
}

// Concurrent requests for one image encode it once; the cache stays within
// its bound, evicting the least recently used image.
func TestImageCacheConcurrentAndBounded(t *testing.T) {
	// Room for two images of 64 kept rows (the tiny LM is 64 wide: 16 KiB
	// of rows each, plus bookkeeping).
	p := openCached(t, 40<<10)
	ctx := context.Background()
	img, _ := pngImage(t, 2)
	o := llava.Options{Keep: 64}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			pr, err := p.PrepareImage(ctx, img, o) // uncached path, for contrast below
			if assert.NoError(t, err) {
				pr.Release()
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(4), p.CacheStats().Encodes, "PrepareImage always encodes")

	sessions := make([]*llava.Session, 4)
	for i := range sessions {
		sessions[i] = session(t, p)
	}
	for _, s := range sessions {
		wg.Go(func() {
			_, err := s.Prefill(ctx, llava.Turn{Text: question, Images: []*llava.Image{img}, Prune: o, Gen: greedy})
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	assert.Equal(t, int64(5), p.CacheStats().Encodes, "four sessions at once: one encode")

	for seed := uint64(3); seed < 6; seed++ {
		other, _ := pngImage(t, seed)
		_, err := session(t, p).Prefill(ctx, llava.Turn{Text: question, Images: []*llava.Image{other}, Prune: o, Gen: greedy})
		require.NoError(t, err)
	}
	cs := p.CacheStats()
	assert.Equal(t, 2, cs.Entries)
	assert.LessOrEqual(t, cs.Bytes, cs.MaxSize)
	// The first image was evicted (least recently used): it is encoded again.
	_, err := session(t, p).Prefill(ctx, llava.Turn{Text: question, Images: []*llava.Image{img}, Prune: o, Gen: greedy})
	require.NoError(t, err)
	assert.Equal(t, cs.Encodes+1, p.CacheStats().Encodes)
}

// A conversation resent with one more turn evaluates only what is new: the
// image is neither encoded nor evaluated again, and the context ends up as
// a fresh session's that evaluated everything.
func TestSyncReusesPrefix(t *testing.T) {
	p := openCached(t, 64<<20)
	ctx := context.Background()
	img, _ := pngImage(t, 4)
	o := llava.Options{Keep: 64}
	s := session(t, p)

	// Turn 1: nothing before the question.
	st0, err := s.Sync(ctx, nil, o)
	require.NoError(t, err)
	assert.Zero(t, st0.ReusedTokens)
	r, err := s.Prefill(ctx, llava.Turn{Text: question, Images: []*llava.Image{img}, Prune: o, Gen: greedy})
	require.NoError(t, err)
	answer, err := r.Generate(ctx)
	require.NoError(t, err)
	encodes := p.CacheStats().Encodes
	require.Equal(t, int64(1), encodes)

	// Turn 2: the client resends turn 1 (the image decoded afresh) and asks
	// again.
	img2, _ := pngImage(t, 4)
	history := []llava.Message{
		{Role: llava.RoleUser, Text: question, Images: []*llava.Image{img2}},
		{Role: llava.RoleAssistant, Text: answer},
	}
	st, err := s.Sync(ctx, history, o)
	require.NoError(t, err)
	// "USER: <image>\n{question} ASSISTANT: {answer}</s>": kept through the
	// question at least (the answer was sampled, its retokenisation may differ).
	assert.Greater(t, st.ReusedTokens, 64+r.Stats.TextTokens-2, "the prefix through the question is kept")
	assert.Zero(t, st.ImageTokens, "the image is not evaluated again")
	reused := st.ReusedTokens
	require.Len(t, st.Images, 1)
	assert.True(t, st.Images[0].Reused)
	assert.Equal(t, 64, st.Images[0].TokensAfter)
	assert.Equal(t, encodes, p.CacheStats().Encodes, "nor encoded again")
	assert.Equal(t, st.ReusedTokens+st.TextTokens, s.Positions())
	second := llava.Turn{Text: "And the colours?", Prune: o, Gen: greedy}
	r2, err := s.Prefill(ctx, second)
	require.NoError(t, err)
	got := append([]float32(nil), s.Context().Logits()...)

	// A fresh session evaluating the whole conversation agrees.
	f := session(t, p)
	_, err = f.Append(ctx, history, o)
	require.NoError(t, err)
	rf, err := f.Prefill(ctx, second)
	require.NoError(t, err)
	assert.Equal(t, f.Positions(), s.Positions())
	assert.Less(t, relErr(got, f.Context().Logits()), 1e-4)
	assert.Equal(t, rf.Stats.Prompt, r2.Stats.Prompt)

	// An edited earlier message keeps only the prefix before the edit.
	edited := []llava.Message{
		{Role: llava.RoleUser, Text: "What colour is the sky?", Images: []*llava.Image{img2}},
		{Role: llava.RoleAssistant, Text: answer},
	}
	st, err = s.Sync(ctx, edited, o)
	require.NoError(t, err)
	assert.Less(t, st.ReusedTokens, reused)
	assert.Greater(t, st.ReusedTokens, 64, "the image comes before the edit: it is kept")
	assert.True(t, st.Images[0].Reused)
	f2 := session(t, p)
	_, err = f2.Append(ctx, edited, o)
	require.NoError(t, err)
	assert.Equal(t, f2.Positions(), s.Positions())
	_, err = s.Prefill(ctx, second)
	require.NoError(t, err)
	_, err = f2.Prefill(ctx, second)
	require.NoError(t, err)
	assert.Less(t, relErr(s.Context().Logits(), f2.Context().Logits()), 1e-4)

	// Other pruning options are other rows: the image is evaluated again.
	st, err = s.Sync(ctx, edited, llava.Options{Keep: 32})
	require.NoError(t, err)
	assert.Equal(t, 32, st.ImageTokens)
	assert.False(t, st.Images[0].Reused)

	// An empty conversation keeps nothing.
	st, err = s.Sync(ctx, nil, o)
	require.NoError(t, err)
	assert.Zero(t, s.Positions())
	assert.Zero(t, st.ReusedTokens)
}
