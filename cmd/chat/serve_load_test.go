package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/cmd/chat/internal/openai"
)

// loadClient sends requests without keeping connections, so that no idle
// connection holds a server goroutine once the load stops.
var loadClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Minute}

// loadRequest is one request kind of the load and its expected answer.
type loadRequest struct {
	body   []byte
	answer string
}

// ask sends a request and returns the answer, or an error describing what
// was wrong (safe to call from any goroutine).
func (lr *loadRequest) ask(url string) (openai.Completion, error) {
	var c openai.Completion
	resp, err := loadClient.Post(url+"/v1/chat/completions", "application/json", bytes.NewReader(lr.body))
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return c, err
	}
	if resp.StatusCode != http.StatusOK {
		return c, fmt.Errorf("HTTP %d: %s", resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return c, err
	}
	if len(c.Choices) != 1 {
		return c, fmt.Errorf("%d choices", len(c.Choices))
	}
	return c, nil
}

// loadRequests are a few request kinds: an image question at two budgets,
// a two-turn conversation about an image, and text only; greedy, so each
// has one right answer, taken from a first run alone.
func loadRequests(t *testing.T, url string) []*loadRequest {
	t.Helper()
	img := dataURI("image/png", imagePNG(t, 21))
	other := dataURI("image/jpeg", imageJPEG(t, 22))
	bodies := []map[string]any{
		{"messages": []any{userMsg(imagePart(img), textPart("What is in the picture?"))}, "max_tokens": 6},
		{"messages": []any{userMsg(imagePart(img), textPart("What is in the picture?"))}, "max_tokens": 6, "hiprune": map[string]any{"keep": 8}},
		{"messages": []any{userMsg(imagePart(other), textPart("Describe it.")),
			map[string]any{"role": "assistant", "content": "A picture."},
			map[string]any{"role": "user", "content": "And the colours?"}}, "max_tokens": 6},
		{"messages": []any{map[string]any{"role": "user", "content": "Tell me a story."}}, "max_tokens": 8},
	}
	out := make([]*loadRequest, len(bodies))
	for i, b := range bodies {
		b["temperature"] = 0
		body, err := json.Marshal(b)
		require.NoError(t, err)
		out[i] = &loadRequest{body: body}
		c, err := out[i].ask(url)
		require.NoError(t, err)
		out[i].answer = c.Choices[0].Message.Content
	}
	return out
}

// rssBytes is the process's resident set size, from /proc.
func rssBytes(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skipf("no /proc/self/statm on this system: %v", err)
	}
	f := strings.Fields(string(b))
	pages, err := strconv.ParseInt(f[1], 10, 64)
	require.NoError(t, err)
	return pages * int64(os.Getpagesize())
}

// settle waits until the server's goroutines are back to at most base.
func settle(base int) int {
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		n := runtime.NumGoroutine()
		if n <= base || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Eight clients at once for a few seconds, on two slots: every answer is
// the one the request gets alone; afterwards the goroutines and the C heap
// are back to their baseline. Then 200 requests one after another: RSS
// shows no growth trend.
func TestServeUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test: a few seconds of requests")
	}
	cfg, _ := serveConfig(t, "--parallel", "2", "--queue", "16")
	url := startServer(t, cfg)
	reqs := loadRequests(t, url)
	for _, r := range reqs { // warm: every slot has seen every kind once
		_, err := r.ask(url)
		require.NoError(t, err)
	}
	time.Sleep(100 * time.Millisecond) // the warm-up's connections close
	runtime.GC()
	baseG := runtime.NumGoroutine()
	baseHeap := bridge.CHeapInUse()

	var done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	stop := time.Now().Add(3 * time.Second)
	for w := range 8 {
		wg.Go(func() {
			for k := w; time.Now().Before(stop); k++ {
				r := reqs[k%len(reqs)]
				c, err := r.ask(url)
				if err == nil && c.Choices[0].Message.Content != r.answer {
					err = fmt.Errorf("request kind %d: answer %q, alone %q", k%len(reqs), c.Choices[0].Message.Content, r.answer)
				}
				if err != nil {
					errs <- err
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("8 clients: %d requests completed in about 3 s", done.Load())
	assert.GreaterOrEqual(t, done.Load(), int64(8), "every client completed a request")

	g := settle(baseG)
	assert.LessOrEqual(t, g, baseG, "goroutines back to the baseline (%d), got %d", baseG, g)
	if baseHeap >= 0 {
		heap := bridge.CHeapInUse()
		t.Logf("C heap in use: %d KiB before the load, %d KiB after", baseHeap>>10, heap>>10)
		assert.Less(t, heap-baseHeap, int64(1<<20), "C allocations back to their baseline (within 1 MiB)")
	}

	// 200 requests in sequence, RSS sampled every 20: the last samples are
	// no higher than the first ones beyond allocator noise.
	var rss []int64
	for i := range 200 {
		r := reqs[i%len(reqs)]
		c, err := r.ask(url)
		require.NoError(t, err)
		require.Equal(t, r.answer, c.Choices[0].Message.Content)
		if i%20 == 19 {
			runtime.GC()
			rss = append(rss, rssBytes(t))
		}
	}
	mibs := make([]string, len(rss))
	for i, x := range rss {
		mibs[i] = fmt.Sprintf("%.1f", float64(x)/(1<<20))
	}
	t.Logf("RSS every 20 requests (MiB): %s", strings.Join(mibs, " "))
	first := max(rss[0], rss[1], rss[2])
	last := max(rss[len(rss)-3], rss[len(rss)-2], rss[len(rss)-1])
	assert.Less(t, last-first, int64(4<<20), "RSS grows over 200 requests: %s MiB", strings.Join(mibs, " "))
	assert.LessOrEqual(t, settle(baseG), baseG)
}
