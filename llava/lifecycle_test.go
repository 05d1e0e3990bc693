package llava_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/llava"
)

// The concurrency contract of the package documentation, under the race
// detector in make test: sessions on one pipeline in parallel goroutines
// sharing the image cache, and one session called from two goroutines.
func TestConcurrentSessionsSharedCache(t *testing.T) {
	p := openCached(t, 1<<20)
	ctx := context.Background()
	img, _ := pngImage(t, 11)
	o := llava.Options{Keep: 16}
	var wg sync.WaitGroup
	answers := make([]string, 4)
	for i := range answers {
		s := session(t, p)
		wg.Go(func() {
			ans, st, err := s.Ask(ctx, llava.Turn{Text: question, Images: []*llava.Image{img}, Prune: o, Gen: greedy})
			if assert.NoError(t, err) {
				answers[i] = ans
				assert.Equal(t, 16, st.ImageTokens)
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			cs := p.CacheStats()
			assert.LessOrEqual(t, cs.Bytes, cs.MaxSize)
		}
	})
	// One session, two goroutines: the calls take turns.
	shared := session(t, p)
	for range 2 {
		wg.Go(func() {
			_, _, err := shared.Ask(ctx, llava.Turn{Text: "Say something.", Gen: greedy})
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	for _, a := range answers[1:] {
		assert.Equal(t, answers[0], a, "greedy answers to the same turn agree")
	}
	assert.Equal(t, int64(1), p.CacheStats().Encodes)
}

// A closed pipeline or session answers ErrClosed instead of touching freed
// memory; closing the pipeline closes its sessions; Close twice is fine.
func TestClosed(t *testing.T) {
	lmPipe := openCached(t, 0)
	ctx := context.Background()
	img, _ := pngImage(t, 12)
	s, err := lmPipe.NewSession(llava.SessionConfig{NCtx: 512})
	require.NoError(t, err)
	r, err := s.Prefill(ctx, llava.Turn{Text: "Hello.", Gen: greedy})
	require.NoError(t, err)

	other, err := lmPipe.NewSession(llava.SessionConfig{NCtx: 512})
	require.NoError(t, err)
	require.NoError(t, other.Close())
	require.NoError(t, other.Close())
	_, _, err = other.Ask(ctx, llava.Turn{Text: "Hello."})
	assert.ErrorIs(t, err, llava.ErrClosed)

	require.NoError(t, lmPipe.Close())
	require.NoError(t, lmPipe.Close())
	_, err = r.Generate(ctx)
	assert.ErrorIs(t, err, llava.ErrClosed, "the pipeline closed its session")
	_, err = s.Prefill(ctx, llava.Turn{Text: "Hello."})
	assert.ErrorIs(t, err, llava.ErrClosed)
	_, err = s.Append(ctx, []llava.Message{{Role: llava.RoleUser, Text: "x"}}, llava.Options{})
	assert.ErrorIs(t, err, llava.ErrClosed)
	_, err = s.Sync(ctx, nil, llava.Options{})
	assert.ErrorIs(t, err, llava.ErrClosed)
	assert.ErrorIs(t, s.Reset(), llava.ErrClosed)
	assert.Zero(t, s.NCtx())
	assert.Nil(t, s.Context())
	_, err = lmPipe.NewSession(llava.SessionConfig{})
	assert.ErrorIs(t, err, llava.ErrClosed)
	_, err = lmPipe.PrepareImage(ctx, img, llava.Options{})
	assert.ErrorIs(t, err, llava.ErrClosed)
	_, err = lmPipe.Encode(ctx, img, 0)
	assert.ErrorIs(t, err, llava.ErrClosed)
}
