package openai

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var lim = Limits{MaxImages: 2}

func TestParseRequest(t *testing.T) {
	png := base64.StdEncoding.EncodeToString([]byte("\x89PNG fake bytes"))
	body := `{
		"model": "anything", "stream": true, "stream_options": {"include_usage": true},
		"max_tokens": 12, "temperature": 0, "top_p": 0.5, "seed": 7, "stop": "END",
		"frequency_penalty": 0, "user": "ignored",
		"hiprune": {"keep": 64, "method": "HiPrune", "alpha": 0.2, "object_layer": 3},
		"messages": [
			{"role": "developer", "content": "Be brief."},
			{"role": "user", "content": [
				{"type": "text", "text": "Look:"},
				{"type": "image_url", "image_url": {"url": "data:image/png;base64,` + png + `", "detail": "low"}}
			]},
			{"role": "assistant", "content": null},
			{"role": "user", "content": [{"type": "image_url", "image_url": "data:;base64,` + png + `"}]}
		]}`
	r, e := ParseRequest([]byte(body), lim)
	require.Nil(t, e)
	assert.Equal(t, "anything", r.Model)
	assert.True(t, r.Stream)
	assert.True(t, r.IncludeUsage)
	assert.Equal(t, 12, r.MaxTokens)
	assert.Equal(t, 0.0, *r.Temperature)
	assert.Equal(t, 0.5, *r.TopP)
	assert.Equal(t, int64(7), *r.Seed)
	assert.Equal(t, []string{"END"}, r.Stop)
	assert.Equal(t, 64, *r.HiPrune.Keep)
	assert.Equal(t, 3, *r.HiPrune.ObjectLayer)
	require.Len(t, r.Messages, 4)
	assert.Equal(t, RoleSystem, r.Messages[0].Role, "developer is read as system")
	assert.Equal(t, []Part{{Text: "Be brief."}}, r.Messages[0].Parts)
	require.Len(t, r.Messages[1].Parts, 2)
	assert.Equal(t, "Look:", r.Messages[1].Parts[0].Text)
	img := r.Messages[1].Parts[1].Image
	require.NotNil(t, img)
	assert.Equal(t, []byte("\x89PNG fake bytes"), img.Data)
	assert.Equal(t, "messages[1].content[1].image_url.url", img.Param)
	assert.Empty(t, r.Messages[2].Parts, "an assistant message may have null content")
	assert.Equal(t, "messages[3].content[0].image_url", r.Messages[3].Parts[0].Image.Param, "image_url as a bare string")

	r, e = ParseRequest([]byte(`{"messages":[{"role":"user","content":"hi"}],"max_completion_tokens":5,"stop":["a","","b"]}`), lim)
	require.Nil(t, e)
	assert.Equal(t, 5, r.MaxTokens)
	assert.Equal(t, []string{"a", "b"}, r.Stop, "empty stop strings are dropped")
	assert.False(t, r.Stream)
}

func TestParseRequestErrors(t *testing.T) {
	user := func(content string) string { return `{"messages":[{"role":"user","content":` + content + `}]}` }
	img := func(url string) string {
		return user(`[{"type":"image_url","image_url":{"url":"` + url + `"}}]`)
	}
	ok := `"messages":[{"role":"user","content":"hi"}]`
	for _, tc := range []struct {
		name, body, param, code, msg string
	}{
		{"empty body", ``, "", "invalid_json", "empty"},
		{"malformed JSON", `{"messages": [`, "", "invalid_json", "malformed JSON"},
		{"syntax error", `{"messages": [}`, "", "invalid_json", "malformed JSON at byte"},
		{"trailing data", `{` + ok + `} {}`, "", "invalid_json", "after the JSON value"},
		{"not an object", `[1,2]`, "", "invalid_type", "want an object"},
		{"messages not an array", `{"messages":"hi"}`, "messages", "invalid_type", "want an array"},
		{"max_tokens a string", `{` + ok + `,"max_tokens":"10"}`, "max_tokens", "invalid_type", "got a JSON string, want an integer"},
		{"max_tokens fractional", `{` + ok + `,"max_tokens":1.5}`, "max_tokens", "invalid_type", "want an integer"},
		{"stream a string", `{` + ok + `,"stream":"yes"}`, "stream", "invalid_type", "true or false"},
		{"temperature a string", `{` + ok + `,"temperature":"hot"}`, "temperature", "invalid_type", "want a number"},
		{"max_tokens zero", `{` + ok + `,"max_tokens":0}`, "max_tokens", "invalid_value", "at least 1"},
		{"temperature out of range", `{` + ok + `,"temperature":3}`, "temperature", "invalid_value", "[0, 2]"},
		{"top_p out of range", `{` + ok + `,"top_p":-0.1}`, "top_p", "invalid_value", "[0, 1]"},
		{"n of 2", `{` + ok + `,"n":2}`, "n", "unsupported_value", "n = 1"},
		{"stop a number", `{` + ok + `,"stop":5}`, "stop", "invalid_type", "string or an array"},
		{"too many stops", `{` + ok + `,"stop":["a","b","c","d","e"]}`, "stop", "invalid_value", "at most 4"},
		{"empty messages", `{"messages":[]}`, "messages", "empty_messages", "at least one message"},
		{"no messages", `{}`, "messages", "empty_messages", "at least one message"},
		{"message not an object", `{"messages":["hi"]}`, "messages[0]", "invalid_type", "want an object"},
		{"missing role", `{"messages":[{"content":"hi"}]}`, "messages[0].role", "missing_parameter", "missing"},
		{"role a number", `{"messages":[{"role":1,"content":"hi"}]}`, "messages[0].role", "invalid_type", "want a string"},
		{"unknown role", `{"messages":[{"role":"robot","content":"hi"}]}`, "messages[0].role", "invalid_role", `"robot"`},
		{"tool role", `{"messages":[{"role":"tool","content":"hi"}]}`, "messages[0].role", "invalid_role", "unsupported role"},
		{"last not user", `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}`, "messages[1].role", "invalid_value", "must be from the user"},
		{"null user content", user(`null`), "messages[0].content", "missing_parameter", "missing"},
		{"content a number", user(`42`), "messages[0].content", "invalid_type", "string or an array"},
		{"part without type", user(`[{"text":"hi"}]`), "messages[0].content[0].type", "missing_parameter", "want text or image_url"},
		{"audio part", user(`[{"type":"input_audio","input_audio":{}}]`), "messages[0].content[0].type", "unsupported_content", `"input_audio"`},
		{"text part without text", user(`[{"type":"text"}]`), "messages[0].content[0].text", "missing_parameter", "missing"},
		{"text a number", user(`[{"type":"text","text":5}]`), "messages[0].content[0].text", "invalid_type", "want a string"},
		{"image without url", user(`[{"type":"image_url","image_url":{}}]`), "messages[0].content[0].image_url.url", "missing_parameter", "missing"},
		{"image_url missing", user(`[{"type":"image_url"}]`), "messages[0].content[0].image_url", "missing_parameter", "missing"},
		{"image in assistant", `{"messages":[{"role":"assistant","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},{"role":"user","content":"hi"}]}`,
			"messages[0].content[0]", "invalid_value", "user messages"},
		{"http URL", img("http://example.com/cat.png"), "messages[0].content[0].image_url.url", "image_url_not_allowed", "--allow-image-urls"},
		{"https URL", img("HTTPS://example.com/cat.png"), "messages[0].content[0].image_url.url", "image_url_not_allowed", "data: URI"},
		{"file URL", img("file:///etc/passwd"), "messages[0].content[0].image_url.url", "invalid_image", "data: URI"},
		{"bad base64", img("data:image/png;base64,iVBOR!!!w0KGgo="), "messages[0].content[0].image_url.url", "invalid_image", "bad base64 at byte 5"},
		{"not base64", img("data:image/png,rawbytes"), "messages[0].content[0].image_url.url", "invalid_image", "not base64"},
		{"text media type", img("data:text/plain;base64,aGk="), "messages[0].content[0].image_url.url", "invalid_image", `"text/plain"`},
		{"no comma", img("data:image/png;base64"), "messages[0].content[0].image_url.url", "invalid_image", "comma"},
		{"no data", img("data:image/png;base64,"), "messages[0].content[0].image_url.url", "invalid_image", "no data"},
		{"too many images", user(`[` + strings.Repeat(`{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}},`, 2) +
			`{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]`), "messages", "too_many_images", "more than 2 images"},
		{"keep zero", `{` + ok + `,"hiprune":{"keep":0}}`, "hiprune.keep", "budget_out_of_range", "at least 1"},
		{"keep negative", `{` + ok + `,"hiprune":{"keep":-5}}`, "hiprune.keep", "budget_out_of_range", "at least 1"},
		{"keep_ratio over 1", `{` + ok + `,"hiprune":{"keep_ratio":1.5}}`, "hiprune.keep_ratio", "budget_out_of_range", "(0, 1]"},
		{"keep_ratio zero", `{` + ok + `,"hiprune":{"keep_ratio":0}}`, "hiprune.keep_ratio", "budget_out_of_range", "(0, 1]"},
		{"keep and keep_ratio", `{` + ok + `,"hiprune":{"keep":3,"keep_ratio":0.5}}`, "hiprune", "invalid_value", "not both"},
		{"keep a string", `{` + ok + `,"hiprune":{"keep":"64"}}`, "hiprune.keep", "invalid_type", "want an integer"},
		{"unknown method", `{` + ok + `,"hiprune":{"method":"magic"}}`, "hiprune.method", "invalid_value", "hiprune, none, uniform, random"},
		{"alpha out of range", `{` + ok + `,"hiprune":{"alpha":2}}`, "hiprune.alpha", "invalid_value", "[0, 1]"},
		{"object layer zero", `{` + ok + `,"hiprune":{"object_layer":0}}`, "hiprune.object_layer", "invalid_value", "at least 1"},
		{"misspelt hiprune field", `{` + ok + `,"hiprune":{"kep":64}}`, "hiprune.kep", "unknown_parameter", "unknown parameter"},
		{"hiprune not an object", `{` + ok + `,"hiprune":64}`, "hiprune", "invalid_type", "want an object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, e := ParseRequest([]byte(tc.body), lim)
			require.NotNil(t, e, "parsed: %+v", r)
			assert.Equal(t, http.StatusBadRequest, e.Status)
			assert.Equal(t, TypeInvalidRequest, e.Type)
			assert.Equal(t, tc.param, deref(e.Param), "param; message %q", e.Message)
			assert.Equal(t, tc.code, deref(e.Code), "code; message %q", e.Message)
			assert.Contains(t, e.Message, tc.msg)
		})
	}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func TestDecodeDataURI(t *testing.T) {
	want := []byte("hello, image")
	std := base64.StdEncoding.EncodeToString(want)
	for _, uri := range []string{
		"data:image/png;base64," + std,
		"data:IMAGE/JPEG;charset=x;BASE64," + std,
		"data:image/webp;base64," + std[:8] + "\r\n" + std[8:],
		"data:image/gif;base64," + strings.TrimRight(std, "="), // unpadded
	} {
		got, err := DecodeDataURI(uri)
		require.NoError(t, err, uri)
		assert.Equal(t, want, got)
	}
}

func TestWriteError(t *testing.T) {
	rec := httptest.NewRecorder()
	e := Errorf(http.StatusServiceUnavailable, TypeUnavailable, "", "server_busy", "busy")
	e.RetryAfter = 3
	WriteError(rec, e)
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, "3", rec.Header().Get("Retry-After"))
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var got map[string]map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	assert.Equal(t, map[string]any{"message": "busy", "type": "unavailable_error", "param": nil, "code": "server_busy"}, got["error"])
}

func TestStopMatcher(t *testing.T) {
	run := func(stops []string, pieces ...string) (string, bool) {
		m := NewStopMatcher(stops)
		var out strings.Builder
		for _, p := range pieces {
			emit, stopped := m.Push(p)
			out.WriteString(emit)
			if stopped {
				return out.String(), true
			}
		}
		out.WriteString(m.Flush())
		return out.String(), false
	}
	out, stopped := run(nil, "a", "b")
	assert.Equal(t, "ab", out)
	assert.False(t, stopped)
	// A stop split over pieces is found and dropped with what follows.
	out, stopped = run([]string{"END"}, "one E", "N", "D two")
	assert.Equal(t, "one ", out)
	assert.True(t, stopped)
	// A partial match that does not complete is sent in the end.
	out, stopped = run([]string{"END"}, "one E", "N")
	assert.Equal(t, "one EN", out)
	assert.False(t, stopped)
	// The earliest of several stops wins.
	out, stopped = run([]string{"xyz", "b"}, "a", "xy", "b")
	assert.Equal(t, "axy", out)
	assert.True(t, stopped)

	// Held-back text is only what could still grow into a stop.
	m := NewStopMatcher([]string{"\n\n"})
	emit, _ := m.Push("line\n")
	assert.Equal(t, "line", emit)
	emit, _ = m.Push("more")
	assert.Equal(t, "\nmore", emit)
}
