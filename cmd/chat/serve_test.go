package main

// Tests of chat serve: in-process (the handler over httptest, and
// runServer on a loopback listener for shutdown) and as the built binary
// on a free loopback port. Requests with an image cost one encode of the
// tiny model's 576-token image each, so there are few of them.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image/jpeg"
	"image/png"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/cmd/chat/internal/openai"
	"github.com/hiprune/hiprune-go/tests/emulator"
	"github.com/hiprune/hiprune-go/tests/fixture"
	"github.com/hiprune/hiprune-go/tests/testmodel"
)

// lockedBuffer collects a server's log from its goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// serveConfig builds a server's configuration through chat serve's own
// flag parsing, on the tiny pair, one thread.
func serveConfig(t *testing.T, args ...string) (serverConfig, *lockedBuffer) {
	t.Helper()
	lm, mm := fixture.Pair(t, "tiny")
	return serveConfigPair(t, lm, mm, args...)
}

// serveConfigPair is serveConfig on another model pair.
func serveConfigPair(t *testing.T, lm, mm string, args ...string) (serverConfig, *lockedBuffer) {
	t.Helper()
	sf := &serveFlags{}
	o, err := parseCommand("chat serve", append([]string{"-m", lm, "--mmproj", mm, "-t", "1", "-c", "1024", "-n", "8", "--temp", "0"}, args...),
		io.Discard, sf.define, printServeUsage)
	require.NoError(t, err)
	cfg, err := newServerConfig(o, sf)
	require.NoError(t, err)
	logs := &lockedBuffer{}
	cfg.log = slog.New(slog.NewTextHandler(logs, nil))
	return cfg, logs
}

// startServer loads the model and serves the handler on httptest.
func startServer(t *testing.T, cfg serverConfig) string {
	t.Helper()
	s := newServer(cfg)
	require.NoError(t, s.load(context.Background()))
	t.Cleanup(s.close)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close) // runs before s.close
	return ts.URL
}

// reply is a response and its whole body.
type reply struct {
	resp *http.Response
	body []byte
}

func post(t *testing.T, url string, body any) reply {
	t.Helper()
	return postCtx(t, context.Background(), url, body)
}

func postCtx(t *testing.T, ctx context.Context, url string, body any) reply {
	t.Helper()
	b, ok := body.([]byte)
	if !ok {
		var err error
		b, err = json.Marshal(body)
		require.NoError(t, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/chat/completions", bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{resp, out}
}

func getJSON(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	var v map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
	return resp.StatusCode, v
}

func imagePNG(t *testing.T, seed uint64) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, testmodel.SampleImage(320, 240, seed)))
	return b.Bytes()
}

func imageJPEG(t *testing.T, seed uint64) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, jpeg.Encode(&b, testmodel.SampleImage(320, 240, seed), &jpeg.Options{Quality: 90}))
	return b.Bytes()
}

func dataURI(mime string, b []byte) string {
	return "data:" + mime + ";base64," + base64.StdEncoding.EncodeToString(b)
}

func imagePart(url string) map[string]any {
	return map[string]any{"type": "image_url", "image_url": map[string]any{"url": url}}
}

func textPart(s string) map[string]any { return map[string]any{"type": "text", "text": s} }

func userMsg(parts ...map[string]any) map[string]any {
	return map[string]any{"role": "user", "content": parts}
}

func completion(t *testing.T, r reply) openai.Completion {
	t.Helper()
	resp, body := r.resp, r.body
	require.Equal(t, http.StatusOK, resp.StatusCode, "body: %s", body)
	var c openai.Completion
	require.NoError(t, json.Unmarshal(body, &c))
	require.Len(t, c.Choices, 1)
	assert.Equal(t, "chat.completion", c.Object)
	assert.True(t, strings.HasPrefix(c.ID, "chatcmpl-"), c.ID)
	assert.Equal(t, "assistant", c.Choices[0].Message.Role)
	require.NotNil(t, c.Timings, "timings object")
	return c
}

// apiError checks an error response: status and OpenAI's error object.
func apiError(t *testing.T, r reply, status int, param, code, msg string) {
	t.Helper()
	resp, body := r.resp, r.body
	require.Equal(t, status, resp.StatusCode, "body: %s", body)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var e struct {
		Error map[string]any `json:"error"`
	}
	require.NoError(t, json.Unmarshal(body, &e), "body: %s", body)
	require.NotNil(t, e.Error, "no error object: %s", body)
	for _, k := range []string{"message", "type", "param", "code"} {
		assert.Contains(t, e.Error, k, "error object lacks %q: %s", k, body)
	}
	if param == "" {
		assert.Nil(t, e.Error["param"], "param: %s", body)
	} else {
		assert.Equal(t, param, e.Error["param"], "param: %s", body)
	}
	assert.Equal(t, code, e.Error["code"], "code: %s", body)
	assert.Contains(t, e.Error["message"], msg)
}

// sse splits a stream into its events' data, checking the framing: every
// event is one "data: " line followed by a blank line.
func sse(t *testing.T, body []byte) []string {
	t.Helper()
	s := string(body)
	require.True(t, strings.HasSuffix(s, "\n\n"), "stream does not end with a blank line: %q", s)
	var out []string
	for _, ev := range strings.Split(strings.TrimSuffix(s, "\n\n"), "\n\n") {
		require.True(t, strings.HasPrefix(ev, "data: "), "event %q is not a data line", ev)
		require.NotContains(t, ev, "\n", "multi-line event %q", ev)
		out = append(out, strings.TrimPrefix(ev, "data: "))
	}
	return out
}

// streamed parses a finished stream: the content, the final chunk and the
// usage chunk (nil unless stream_options.include_usage).
func streamed(t *testing.T, r reply) (content string, last openai.Chunk, usage *openai.Usage) {
	t.Helper()
	resp, body := r.resp, r.body
	require.Equal(t, http.StatusOK, resp.StatusCode, "body: %s", body)
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	events := sse(t, body)
	require.GreaterOrEqual(t, len(events), 3, "role, finish and [DONE] at least")
	require.Equal(t, "[DONE]", events[len(events)-1])
	var chunks []openai.Chunk
	for _, ev := range events[:len(events)-1] {
		var c openai.Chunk
		require.NoError(t, json.Unmarshal([]byte(ev), &c), ev)
		assert.Equal(t, "chat.completion.chunk", c.Object)
		chunks = append(chunks, c)
	}
	id := chunks[0].ID
	require.Len(t, chunks[0].Choices, 1)
	assert.Equal(t, "assistant", chunks[0].Choices[0].Delta.Role, "the first chunk gives the role")
	var b strings.Builder
	finished := -1
	for i, c := range chunks {
		assert.Equal(t, id, c.ID, "one id per stream")
		if len(c.Choices) == 0 { // the usage chunk, after the finish
			require.NotNil(t, c.Usage)
			assert.Equal(t, i, len(chunks)-1, "usage chunk comes last")
			usage = c.Usage
			continue
		}
		if c.Choices[0].Delta.Content != nil {
			b.WriteString(*c.Choices[0].Delta.Content)
		}
		if c.Choices[0].FinishReason != nil {
			require.Equal(t, -1, finished, "two finish chunks")
			finished = i
			last = c
		} else {
			assert.Nil(t, c.Usage, "usage before the end")
		}
	}
	require.NotEqual(t, -1, finished, "no chunk with a finish_reason")
	return b.String(), last, usage
}

// checkCounts checks usage and timings against each other: the prompt is
// the text and the kept image tokens, the cache holds it and the answer.
func checkCounts(t *testing.T, u openai.Usage, tm *openai.Timings, finish string) {
	t.Helper()
	require.NotNil(t, tm)
	assert.Equal(t, u.PromptTokens+u.CompletionTokens, u.TotalTokens)
	if tm.ImagesReused == 0 {
		assert.Equal(t, tm.CacheN+tm.TextTokens+u.ImageTokensAfter, u.PromptTokens)
	}
	assert.Equal(t, u.ImageTokensBefore, tm.ImageTokensBefore)
	assert.Equal(t, u.ImageTokensAfter, tm.ImageTokensAfter)
	assert.Equal(t, u.CompletionTokens, tm.DecodeTokens)
	assert.Equal(t, u.PromptTokens, tm.CacheN+tm.PromptN, "prompt tokens are the reused and the evaluated ones")
	if tm.CacheN > 0 {
		require.NotNil(t, u.PromptDetails)
		assert.Equal(t, tm.CacheN, u.PromptDetails.CachedTokens)
	} else {
		assert.Nil(t, u.PromptDetails)
	}
	cells := u.PromptTokens + u.CompletionTokens
	if tm.Stop == "eog" {
		cells++
	}
	assert.Equal(t, cells, tm.KVCells)
	switch tm.Stop {
	case "eog":
		assert.Equal(t, "stop", finish)
	case "limit", "context":
		assert.Equal(t, "length", finish)
	}
	if tm.ImagesEncoded > 0 {
		assert.Positive(t, tm.EncodeMS)
	} else {
		assert.Zero(t, tm.EncodeMS, "no image encoded, no encode time")
	}
	assert.Positive(t, tm.TTFTMS)
}

// An image request answered whole and streamed, with the pruning asked
// for; the stream carries the same greedy answer as the whole response.
// The streamed image comes from an http URL the server may fetch.
func TestServeChat(t *testing.T) {
	png := imagePNG(t, 3)
	images := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(png)
	}))
	defer images.Close()
	cfg, _ := serveConfig(t, "--keep", "32", "--allow-image-urls", "--alias", "tiny-llava")
	url := startServer(t, cfg)

	code, models := getJSON(t, url+"/v1/models")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "list", models["object"])
	require.Len(t, models["data"], 1)
	assert.Equal(t, "tiny-llava", models["data"].([]any)[0].(map[string]any)["id"])
	code, health := getJSON(t, url+"/health")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok", health["status"])

	req := map[string]any{
		"model":    "whatever",
		"messages": []any{userMsg(imagePart(dataURI("image/png", png)), textPart("What is in the picture?"))},
		"hiprune":  map[string]any{"keep": 16}, "max_tokens": 6, "temperature": 0,
	}
	c := completion(t, post(t, url, req))
	assert.Equal(t, "tiny-llava", c.Model)
	answer := c.Choices[0].Message.Content
	assert.NotEmpty(t, answer)
	assert.Equal(t, 576, c.Usage.ImageTokensBefore)
	assert.Equal(t, 16, c.Usage.ImageTokensAfter, "the request's keep, not the server's 32")
	assert.Equal(t, "hiprune", c.Timings.Prune)
	checkCounts(t, c.Usage, c.Timings, c.Choices[0].FinishReason)
	if c.Choices[0].FinishReason == "length" {
		assert.Equal(t, 6, c.Usage.CompletionTokens)
	}

	req["stream"] = true
	req["messages"] = []any{userMsg(imagePart(images.URL+"/x.png"), textPart("What is in the picture?"))}
	content, last, usage := streamed(t, post(t, url, req))
	assert.Nil(t, usage, "no usage chunk unless asked for")
	assert.Equal(t, answer, content, "streamed and whole greedy answers differ")
	assert.Equal(t, c.Choices[0].FinishReason, *last.Choices[0].FinishReason)
	require.NotNil(t, last.Usage, "the final chunk carries usage")
	assert.Equal(t, c.Usage, *last.Usage)
	checkCounts(t, *last.Usage, last.Timings, *last.Choices[0].FinishReason)

	// A resent conversation: the earlier image and answer are evaluated,
	// the server's --keep 32 applies; usage counts the whole prompt.
	conv := map[string]any{
		"messages": []any{
			map[string]any{"role": "system", "content": "Answer briefly."},
			userMsg(textPart("Look at this."), imagePart(dataURI("image/jpeg", imageJPEG(t, 5)))),
			map[string]any{"role": "assistant", "content": answer},
			map[string]any{"role": "user", "content": "And the colours?"},
		},
		"stream": true, "stream_options": map[string]any{"include_usage": true}, "max_tokens": 4,
	}
	_, last, usage = streamed(t, post(t, url, conv))
	require.NotNil(t, usage, "include_usage sends a usage chunk")
	assert.Nil(t, last.Usage, "usage goes in its own chunk when asked for")
	assert.Equal(t, 576, usage.ImageTokensBefore)
	assert.Equal(t, 32, usage.ImageTokensAfter, "the server's --keep")
	checkCounts(t, *usage, last.Timings, *last.Choices[0].FinishReason)
	assert.Greater(t, last.Timings.TextTokens, c.Timings.TextTokens, "the whole conversation's text is in the prompt")
}

// A conversation resent with one more turn (as OpenAI clients do) runs the
// encoder once for its image and evaluates only the new turn: the slot
// keeps its KV prefix and the image cache its pruned rows. The answer is
// the one a server without reuse gives.
func TestServeReusesConversation(t *testing.T) {
	cfg, _ := serveConfig(t, "--keep", "32", "--parallel", "2")
	url := startServer(t, cfg)
	noCache, _ := serveConfig(t, "--keep", "32", "--image-cache-mib", "0")
	plain := startServer(t, noCache)

	img := dataURI("image/png", imagePNG(t, 8))
	first := []any{userMsg(textPart("Look at this."), imagePart(img))}
	c1 := completion(t, post(t, url, map[string]any{"messages": first, "max_tokens": 6}))
	checkCounts(t, c1.Usage, c1.Timings, c1.Choices[0].FinishReason)
	assert.Equal(t, 1, c1.Timings.ImagesEncoded)
	assert.Zero(t, c1.Timings.CacheN)

	conv := append(first, map[string]any{"role": "assistant", "content": c1.Choices[0].Message.Content},
		map[string]any{"role": "user", "content": "And the colours?"})
	req := map[string]any{"messages": conv, "max_tokens": 6}
	c2 := completion(t, post(t, url, req))
	checkCounts(t, c2.Usage, c2.Timings, c2.Choices[0].FinishReason)
	tm := c2.Timings
	assert.Zero(t, tm.ImagesEncoded, "turn 2 does not run the encoder")
	assert.Equal(t, 1, tm.ImagesReused, "the image stays in the slot's context")
	assert.Zero(t, tm.EncodeMS)
	assert.Greater(t, tm.CacheN, 32, "the prefix through the image is reused")
	assert.Less(t, tm.PromptN, c1.Timings.PromptN, "only the new turn is evaluated")
	assert.Equal(t, 32, c2.Usage.ImageTokensAfter, "usage still counts the conversation's image")

	// The same conversation on a server without reuse: same greedy answer,
	// same prompt size, all of it evaluated.
	want := completion(t, post(t, plain, req))
	assert.Equal(t, want.Choices[0].Message.Content, c2.Choices[0].Message.Content)
	assert.Equal(t, want.Usage.PromptTokens, c2.Usage.PromptTokens)
	assert.Equal(t, 1, want.Timings.ImagesEncoded)
	assert.Zero(t, want.Timings.CacheN)

	// A conversation that differs from the start (a system message first)
	// keeps nothing of the slot's context, but the image comes from the
	// cache, not the encoder.
	sys := append([]any{map[string]any{"role": "system", "content": "Be brief."}}, conv...)
	c3 := completion(t, post(t, url, map[string]any{"messages": sys, "max_tokens": 6}))
	checkCounts(t, c3.Usage, c3.Timings, c3.Choices[0].FinishReason)
	assert.Zero(t, c3.Timings.ImagesEncoded)
	assert.Equal(t, 1, c3.Timings.ImagesCached)

	// Requests at once, on both slots: still no encode.
	var wg sync.WaitGroup
	got := make([]openai.Completion, 2)
	for i := range got {
		wg.Go(func() { got[i] = completion(t, post(t, url, req)) })
	}
	wg.Wait()
	encoded, cached, reused := 0, 0, 0
	for _, c := range got {
		assert.Equal(t, c2.Choices[0].Message.Content, c.Choices[0].Message.Content)
		encoded += c.Timings.ImagesEncoded
		cached += c.Timings.ImagesCached
		reused += c.Timings.ImagesReused
	}
	assert.Zero(t, encoded, "the image was encoded once, in turn 1")
	assert.Equal(t, 2, cached+reused)
}

// Text-only requests: seeds, stop sequences, defaults, roles.
func TestServeSampling(t *testing.T) {
	cfg, _ := serveConfig(t)
	url := startServer(t, cfg)
	ask := func(extra map[string]any) openai.Completion {
		req := map[string]any{"messages": []any{map[string]any{"role": "user", "content": "Tell me a story."}}, "max_tokens": 24}
		for k, v := range extra {
			req[k] = v
		}
		return completion(t, post(t, url, req))
	}
	greedy := ask(nil)
	assert.Equal(t, 0, greedy.Usage.ImageTokensBefore)
	checkCounts(t, greedy.Usage, greedy.Timings, greedy.Choices[0].FinishReason)
	text := greedy.Choices[0].Message.Content
	require.GreaterOrEqual(t, len(text), 12, "answer %q too short to cut", text)

	a := ask(map[string]any{"temperature": 0.9, "seed": 42})
	b := ask(map[string]any{"temperature": 0.9, "seed": 42})
	assert.Equal(t, a.Choices[0].Message.Content, b.Choices[0].Message.Content, "same seed, same answer")

	// A stop sequence from the middle of the greedy answer cuts it there.
	stop := text[len(text)/2 : len(text)/2+3]
	cut := ask(map[string]any{"stop": []string{"never appears", stop}})
	assert.Equal(t, text[:strings.Index(text, stop)], cut.Choices[0].Message.Content)
	assert.Equal(t, "stop", cut.Choices[0].FinishReason)
	assert.Less(t, cut.Usage.CompletionTokens, greedy.Usage.CompletionTokens)

	// Streamed, the same cut: held-back text never leaks past the stop.
	req := map[string]any{"messages": []any{map[string]any{"role": "user", "content": "Tell me a story."}}, "max_tokens": 24,
		"stop": stop, "stream": true}
	content, last, _ := streamed(t, post(t, url, req))
	assert.Equal(t, cut.Choices[0].Message.Content, content)
	assert.Equal(t, "stop", *last.Choices[0].FinishReason)

	// Without max_tokens, -n (8 here) is the limit.
	d := completion(t, post(t, url, map[string]any{"messages": []any{map[string]any{"role": "user", "content": "Tell me a story."}}}))
	if d.Choices[0].FinishReason == "length" {
		assert.Equal(t, 8, d.Usage.CompletionTokens)
	}
}

// pngHeader is a PNG whose header claims w x h pixels (IHDR with a right
// checksum) followed by junk: the decoder must refuse it from the header.
func pngHeader(t *testing.T, w, h uint32) []byte {
	t.Helper()
	b := imagePNG(t, 1)
	out := append([]byte(nil), b[:64]...)
	binary.BigEndian.PutUint32(out[16:], w)
	binary.BigEndian.PutUint32(out[20:], h)
	binary.BigEndian.PutUint32(out[29:], crc32.ChecksumIEEE(out[12:29]))
	return out
}

// Every bad input is a 4xx with an OpenAI error object naming the problem,
// and the server stays up.
func TestServeBadInput(t *testing.T) {
	cfg, _ := serveConfig(t, "--max-images", "2", "--max-body-mib", "1")
	url := startServer(t, cfg)
	good := imagePNG(t, 2)
	one := func(parts ...map[string]any) map[string]any {
		return map[string]any{"messages": []any{userMsg(parts...)}, "max_tokens": 2}
	}
	img := func(uri string) map[string]any { return one(imagePart(uri), textPart("What is it?")) }
	const p0 = "messages[0].content[0].image_url.url"
	for _, tc := range []struct {
		name              string
		body              any
		status            int
		param, code, want string
	}{
		{"malformed JSON", []byte(`{"messages": [{"role": "user", "content": "hi"}`), 400, "", "invalid_json", "malformed JSON"},
		{"wrong type", []byte(`{"messages": [{"role": "user", "content": "hi"}], "max_tokens": "many"}`), 400, "max_tokens", "invalid_type", "want an integer"},
		{"unknown role", map[string]any{"messages": []any{map[string]any{"role": "wizard", "content": "hi"}}}, 400, "messages[0].role", "invalid_role", `"wizard"`},
		{"empty messages", map[string]any{"messages": []any{}}, 400, "messages", "empty_messages", "at least one message"},
		{"bad base64", img("data:image/png;base64,iVBORw0K@@@"), 400, p0, "invalid_image", "bad base64"},
		{"http URL", img("http://169.254.169.254/latest/meta-data"), 400, p0, "image_url_not_allowed", "does not fetch image URLs"},
		{"unsupported image", img(dataURI("image/bmp", append([]byte("BM"), make([]byte, 64)...))), 400, p0, "unsupported_image", "BMP"},
		{"text as an image", img(dataURI("image/png", []byte("hello, I am not a picture at all"))), 400, p0, "unsupported_image", "unsupported"},
		{"corrupt image", img(dataURI("image/png", good[:len(good)/2])), 400, p0, "invalid_image", "truncated or corrupt"},
		{"over the pixel limit", img(dataURI("image/png", pngHeader(t, 10000, 10000))), 400, p0, "image_too_large", "over the limit of 50000000 pixels"},
		{"too many images", one(imagePart(dataURI("image/png", good)), imagePart(dataURI("image/png", good)), imagePart(dataURI("image/png", good))),
			400, "messages", "too_many_images", "more than 2 images"},
		{"body over the limit", one(textPart(strings.Repeat("x", 3<<19))), 413, "", "request_too_large", "1 MiB"},
		{"budget out of range", map[string]any{"messages": []any{userMsg(textPart("hi"))}, "hiprune": map[string]any{"keep_ratio": 1.5}},
			400, "hiprune.keep_ratio", "budget_out_of_range", "(0, 1]"},
		{"object layer past the encoder", map[string]any{"messages": []any{userMsg(imagePart(dataURI("image/png", good)))}, "hiprune": map[string]any{"object_layer": 99}},
			400, "hiprune", "invalid_value", "99"},
		{"max_tokens past the context", map[string]any{"messages": []any{userMsg(textPart("hi"))}, "max_tokens": 5000},
			400, "max_tokens", "context_length_exceeded", "1024-token context"},
		{"prompt and max_tokens past the context", map[string]any{"messages": []any{userMsg(textPart(strings.Repeat("word ", 100)))}, "max_tokens": 1000},
			400, "max_tokens", "context_length_exceeded", "max_tokens asks for 1000 more"},
		{"messages past the context", map[string]any{"messages": []any{userMsg(textPart(strings.Repeat("word ", 1500)))}},
			400, "messages", "context_length_exceeded", "1024-token context"},
		{"image past the context", map[string]any{"messages": []any{userMsg(imagePart(dataURI("image/png", good)), imagePart(dataURI("image/png", good)))},
			"hiprune": map[string]any{"method": "none"}}, 400, "messages", "context_length_exceeded", "image"},
		{"reserved marker", one(textPart("what is <image>?")), 400, "messages[0].content", "invalid_value", "reserves"},
		{"last message not the user's", map[string]any{"messages": []any{map[string]any{"role": "user", "content": "hi"}, map[string]any{"role": "assistant", "content": "yo"}}},
			400, "messages[1].role", "invalid_value", "must be from the user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := post(t, url, tc.body)
			apiError(t, r, tc.status, tc.param, tc.code, tc.want)
		})
	}
	t.Run("wrong method and route", func(t *testing.T) {
		resp, err := http.Get(url + "/v1/chat/completions")
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		apiError(t, reply{resp, body}, 405, "", "method_not_allowed", "use POST")
		resp, err = http.Get(url + "/v2/engines")
		require.NoError(t, err)
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		apiError(t, reply{resp, body}, 404, "", "not_found", "/v2/engines")
	})
	// Still up, the slot free, and answering.
	code, health := getJSON(t, url+"/health")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, 1.0, health["slots_idle"])
	completion(t, post(t, url, map[string]any{"messages": []any{userMsg(textPart("hi"))}}))
}

func TestServeImageURLFetch(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	images := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big.png":
			_, _ = w.Write(make([]byte, 2<<20))
		case "/slow.png":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer images.Close()
	cfg, _ := serveConfig(t, "--allow-image-urls", "--image-url-timeout", "200ms", "--max-body-mib", "1")
	url := startServer(t, cfg)
	for _, tc := range []struct{ path, want string }{
		{"/missing.png", "404"},
		{"/big.png", "over the 1 MiB limit"},
		{"/slow.png", "deadline exceeded"},
	} {
		r := post(t, url, map[string]any{"messages": []any{userMsg(imagePart(images.URL + tc.path))}})
		apiError(t, r, 400, "messages[0].content[0].image_url.url", "image_url_fetch_failed", tc.want)
	}
}

// Before the model is loaded: /health and completions say 503.
func TestServeLoading(t *testing.T) {
	cfg, _ := serveConfig(t)
	s := newServer(cfg)
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	code, health := getJSON(t, ts.URL+"/health")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "loading", health["status"])
	r := post(t, ts.URL, map[string]any{"messages": []any{userMsg(textPart("hi"))}})
	apiError(t, r, 503, "", "loading", "loading")
	assert.Equal(t, "1", r.resp.Header.Get("Retry-After"))

	require.NoError(t, s.load(context.Background()))
	defer s.close()
	code, health = getJSON(t, ts.URL+"/health")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok", health["status"])
}

// holdTokens makes generation wait at its first piece until release is
// closed or the request's context ends; entered says it got there.
func holdTokens(cfg *serverConfig) (entered chan struct{}, release chan struct{}) {
	entered, release = make(chan struct{}, 8), make(chan struct{})
	cfg.tokenHook = func(ctx context.Context) {
		select {
		case entered <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
	}
	return entered, release
}

// openStream starts a streaming request and reads its first event (the
// role chunk, sent once the prompt is evaluated): the request then holds
// its session. The caller reads the rest from the reader.
func openStream(t *testing.T, ctx context.Context, url string, maxTokens int) (*http.Response, *bufio.Reader) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"messages": []any{userMsg(textPart("Tell me a story."))}, "max_tokens": maxTokens, "stream": true})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/chat/completions", bytes.NewReader(b))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	require.Contains(t, line, `"role":"assistant"`)
	return resp, br
}

// waitHealth polls /health until ok says so.
func waitHealth(t *testing.T, url string, ok func(map[string]any) bool) {
	t.Helper()
	deadline := time.Now().Add(emulator.Timeout(30 * time.Second))
	for {
		code, h := getJSON(t, url+"/health")
		if code == http.StatusOK && ok(h) {
			return
		}
		require.True(t, time.Now().Before(deadline), "health never reached the state; last %v", h)
		time.Sleep(10 * time.Millisecond)
	}
}

// One session and one queue place: a second request waits, a third is
// refused with 503 and Retry-After; both admitted ones then complete.
func TestServeQueue(t *testing.T) {
	cfg, _ := serveConfig(t, "--parallel", "1", "--queue", "1")
	_, release := holdTokens(&cfg)
	url := startServer(t, cfg)

	a, rest := openStream(t, context.Background(), url, 4)
	defer a.Body.Close()
	queued := make(chan []byte, 1)
	go func() { // plain http: require may not stop the test from here
		resp, err := http.Post(url+"/v1/chat/completions", "application/json",
			strings.NewReader(`{"messages":[{"role":"user","content":"hi"}],"max_tokens":2}`))
		if err != nil {
			queued <- []byte(err.Error())
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		queued <- body
	}()
	waitHealth(t, url, func(h map[string]any) bool { return h["requests_waiting"] == 1.0 })
	r := post(t, url, map[string]any{"messages": []any{userMsg(textPart("hi"))}})
	apiError(t, r, 503, "", "server_busy", "busy")
	assert.Equal(t, "1", r.resp.Header.Get("Retry-After"))

	close(release)
	tail, err := io.ReadAll(rest)
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(string(tail), "data: [DONE]\n\n"), "stream A did not finish: %q", tail)
	var c openai.Completion
	body := <-queued
	require.NoError(t, json.Unmarshal(body, &c), "queued request: %s", body)
	require.Len(t, c.Choices, 1, "the queued request was answered")
	waitHealth(t, url, func(h map[string]any) bool { return h["slots_idle"] == 1.0 && h["requests_waiting"] == 0.0 })
}

// A client that disconnects cancels its generation and frees its session,
// whether it was waiting for a whole answer or reading a stream.
func TestServeClientDisconnect(t *testing.T) {
	cfg, logs := serveConfig(t, "--parallel", "1", "--queue", "0")
	entered, release := holdTokens(&cfg)
	url := startServer(t, cfg)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		b, _ := json.Marshal(map[string]any{"messages": []any{userMsg(textPart("hi"))}, "max_tokens": 500})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/chat/completions", bytes.NewReader(b))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-entered // generating, the session held
	r := post(t, url, map[string]any{"messages": []any{userMsg(textPart("hi"))}})
	apiError(t, r, 503, "", "server_busy", "busy")
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	waitHealth(t, url, func(h map[string]any) bool { return h["slots_idle"] == 1.0 })

	ctx, cancel = context.WithCancel(context.Background())
	s, _ := openStream(t, ctx, url, 500)
	<-entered
	cancel()
	s.Body.Close()
	waitHealth(t, url, func(h map[string]any) bool { return h["slots_idle"] == 1.0 })
	assert.Equal(t, 2, strings.Count(logs.String(), "client disconnected"), "logs:\n%s", logs)
	assert.NotContains(t, logs.String(), "chat completion ", "a cancelled request was completed")

	close(release)
	c := completion(t, post(t, url, map[string]any{"messages": []any{userMsg(textPart("hi"))}, "max_tokens": 3}))
	assert.NotEmpty(t, c.Choices[0].Message.Content)
}

// Shutdown with a request in flight: new connections are refused at once;
// the request finishes within the grace period, or is cancelled after it
// with an error event; runServer returns nil either way.
func TestServeShutdown(t *testing.T) {
	for _, finish := range []bool{true, false} {
		t.Run(fmt.Sprintf("finish=%v", finish), func(t *testing.T) {
			grace := "30s"
			if !finish {
				grace = "100ms"
			}
			cfg, _ := serveConfig(t, "--shutdown-timeout", grace)
			_, release := holdTokens(&cfg)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			url := "http://" + ln.Addr().String()
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			g, _ := time.ParseDuration(grace)
			served := make(chan error, 1)
			go func() { served <- runServer(ctx, cfg, ln, g) }()
			waitHealth(t, url, func(map[string]any) bool { return true })

			resp, rest := openStream(t, context.Background(), url, 4)
			defer resp.Body.Close()
			stop() // as SIGTERM does
			deadline := time.Now().Add(emulator.Timeout(30 * time.Second))
			for {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					break // refused: no longer accepting
				}
				c.Close()
				require.True(t, time.Now().Before(deadline), "still accepting connections")
				time.Sleep(10 * time.Millisecond)
			}
			if finish {
				close(release)
			}
			tail, _ := io.ReadAll(rest)
			if finish {
				assert.True(t, strings.HasSuffix(string(tail), "data: [DONE]\n\n"), "the in-flight request did not finish: %q", tail)
			} else {
				defer close(release)
				assert.NotContains(t, string(tail), "[DONE]")
				assert.Contains(t, string(tail), `"code":"shutting_down"`, "no error event in %q", tail)
			}
			require.NoError(t, <-served)
		})
	}
}

// serveBinary starts the built chat binary's server on a free port and
// waits until it is ready; it returns the base URL and the process.
func serveBinary(t *testing.T, args ...string) (string, *exec.Cmd, *lockedBuffer) {
	t.Helper()
	e := setup(t)
	cmd := emulator.Command(chatBin, append([]string{"serve", "-m", e.lm, "--mmproj", e.mm, "--port", "0", "-t", "1", "-c", "1024", "--temp", "0"}, args...)...)
	stderr := &lockedBuffer{}
	pipe, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(stderr, line)
			if a, ok := strings.CutPrefix(line, "chat: listening on http://"); ok {
				addr <- strings.Fields(a)[0]
			}
		}
	}()
	var url string
	select {
	case a := <-addr:
		url = "http://" + a
	case <-time.After(emulator.Timeout(60 * time.Second)):
		t.Fatalf("the server never said where it listens; stderr:\n%s", stderr)
	}
	waitHealth(t, url, func(map[string]any) bool { return true })
	return url, cmd, stderr
}

// The built binary on a loopback port: an image request with the flags'
// pruning default, then SIGTERM while a stream is in flight: the stream
// finishes (or, past a zero grace period, ends with an error event) and
// the process exits 0.
func TestServeBinary(t *testing.T) {
	// The default grace (10 s) is for native speed; the 600-token stream
	// below must fit it under emulation too.
	grace := emulator.Timeout(10 * time.Second).String()
	url, cmd, stderr := serveBinary(t, "--keep", "24", "-n", "4", "--shutdown-timeout", grace)
	code, models := getJSON(t, url+"/v1/models")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "tiny-lm.gguf", models["data"].([]any)[0].(map[string]any)["id"])
	c := completion(t, post(t, url, map[string]any{"messages": []any{userMsg(imagePart(dataURI("image/jpeg", imageJPEG(t, 4))), textPart("What is it?"))}}))
	assert.Equal(t, 576, c.Usage.ImageTokensBefore)
	assert.Equal(t, 24, c.Usage.ImageTokensAfter)
	checkCounts(t, c.Usage, c.Timings, c.Choices[0].FinishReason)

	resp, rest := openStream(t, context.Background(), url, 600)
	defer resp.Body.Close()
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	tail, _ := io.ReadAll(rest)
	assert.True(t, strings.HasSuffix(string(tail), "data: [DONE]\n\n"), "the in-flight stream did not finish: ...%q", tail[max(0, len(tail)-300):])
	require.NoError(t, cmd.Wait(), "stderr:\n%s", stderr)
	assert.Equal(t, 0, cmd.ProcessState.ExitCode())
	assert.Contains(t, stderr.String(), "chat: shutting down")
	assertNoPanic(t, result{stderr: stderr.String()})

	t.Run("grace over", func(t *testing.T) {
		url, cmd, stderr := serveBinary(t, "--shutdown-timeout", "0s")
		resp, rest := openStream(t, context.Background(), url, 1000)
		defer resp.Body.Close()
		require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
		tail, _ := io.ReadAll(rest)
		assert.NotContains(t, string(tail), "[DONE]", "a 1000-token answer finished at once")
		require.NoError(t, cmd.Wait(), "stderr:\n%s", stderr)
		assert.Equal(t, 0, cmd.ProcessState.ExitCode())
	})
}

func TestServeUsageErrors(t *testing.T) {
	e := setup(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	port := fmt.Sprint(taken.Addr().(*net.TCPAddr).Port)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"serve"}, 2, "missing -m"},
		{[]string{"serve", "-m", e.lm, "--image", e.img}, 2, "-image: not a chat serve flag"},
		{[]string{"serve", "-m", e.lm, "-p", "hi"}, 2, "-p: not a chat serve flag"},
		{[]string{"serve", "-m", e.lm, "--parallel", "0"}, 2, "--parallel 0"},
		{[]string{"serve", "-m", e.lm, "--queue", "-1"}, 2, "--queue -1"},
		{[]string{"serve", "-m", e.lm, "--port", "70000"}, 2, "--port 70000"},
		{[]string{"serve", "-m", e.lm, "--keep-ratio", "2"}, 2, "--keep-ratio 2"},
		{[]string{"serve", "-m", e.lm, "--bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"serve", "-m", "/nonexistent/lm.gguf"}, 1, "/nonexistent/lm.gguf"},
		{[]string{"serve", "-m", e.lm, "--port", port}, 1, "address already in use"},
	} {
		r := runChat(t, "", tc.args...)
		assertFails(t, r, tc.code, tc.want)
	}
	r := runChat(t, "", "serve", "--help")
	assert.Equal(t, 0, r.code)
	assert.Contains(t, r.stderr, "-parallel int")
	assert.Contains(t, r.stderr, "-keep int")
	assert.NotContains(t, r.stderr, "-save-mask", "chat-only flags are not listed")
}

// openaiClientDir installs the openai npm package (pinned by
// testdata/openai-client/package-lock.json) into a cache folder once, with
// the client script beside it.
func openaiClientDir(t *testing.T) string {
	t.Helper()
	_, errNode := exec.LookPath("node")
	npm, errNpm := exec.LookPath("npm")
	if errNode != nil || errNpm != nil {
		t.Skip("node or npm not found: the openai npm client test needs Node.js (make test installs Debian's nodejs and npm)")
	}
	src := filepath.Join("testdata", "openai-client")
	lock, err := os.ReadFile(filepath.Join(src, "package-lock.json"))
	require.NoError(t, err)
	cache, err := os.UserCacheDir()
	require.NoError(t, err)
	dir := filepath.Join(cache, "hiprune-go", fmt.Sprintf("openai-client-%08x", crc32.ChecksumIEEE(lock)))
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for _, f := range []string{"package.json", "package-lock.json", "client.mjs"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai", "package.json")); err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "npm ci of the openai package (from the npm registry) in %s:\n%s", dir, out)
	}
	return dir
}

// A client nobody here wrote: the openai npm package streams a multimodal
// answer with usage, gets it whole, reads a 400's error object and lists
// the models.
func TestServeOpenAINodeClient(t *testing.T) {
	dir := openaiClientDir(t)
	cfg, _ := serveConfig(t, "--alias", "tiny")
	url := startServer(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), emulator.Timeout(2*time.Minute))
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "client.mjs", url+"/v1", dataURI("image/png", imagePNG(t, 6)))
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "node client.mjs:\n%s", stderr.String())
	var out struct {
		StreamContent string       `json:"stream_content"`
		StreamFinish  string       `json:"stream_finish"`
		StreamChunks  int          `json:"stream_chunks"`
		StreamUsage   openai.Usage `json:"stream_usage"`
		Content       string       `json:"content"`
		Usage         openai.Usage `json:"usage"`
		Error         struct {
			Status int    `json:"status"`
			Param  string `json:"param"`
			Code   string `json:"code"`
			Type   string `json:"type"`
		} `json:"error"`
		Models []string `json:"models"`
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &out), "client output: %s", stdout.String())
	assert.NotEmpty(t, out.StreamContent)
	assert.Equal(t, out.Content, out.StreamContent, "greedy answers streamed and whole differ")
	assert.Contains(t, []string{"stop", "length"}, out.StreamFinish)
	assert.GreaterOrEqual(t, out.StreamChunks, 3)
	assert.Equal(t, 576, out.StreamUsage.ImageTokensBefore)
	assert.Equal(t, 20, out.StreamUsage.ImageTokensAfter, "the hiprune field reached the server")
	assert.Equal(t, out.Usage, out.StreamUsage)
	assert.Equal(t, out.Usage.PromptTokens+out.Usage.CompletionTokens, out.Usage.TotalTokens)
	assert.Equal(t, 400, out.Error.Status)
	assert.Equal(t, "messages[0].role", out.Error.Param)
	assert.Equal(t, "invalid_role", out.Error.Code)
	assert.Equal(t, "invalid_request_error", out.Error.Type)
	assert.Equal(t, []string{"tiny"}, out.Models)
}
