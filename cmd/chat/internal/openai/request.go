package openai

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Request is a validated POST /v1/chat/completions body.
type Request struct {
	Model        string
	Messages     []Message
	Stream       bool
	IncludeUsage bool // stream_options.include_usage
	// MaxTokens is max_tokens (or max_completion_tokens); 0 when not given.
	MaxTokens   int
	Temperature *float64
	TopP        *float64
	Seed        *int64
	Stop        []string
	HiPrune     HiPrune
}

// Roles of a message; OpenAI's "developer" is read as system.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Message is one message: text and image parts in order.
type Message struct {
	Role  string
	Parts []Part
}

// Part is a text or an image.
type Part struct {
	Text  string
	Image *Image // nil for a text part
}

// Image is an image_url part: bytes from a data: URI, or an http(s) URL
// the server fetches only where that is allowed.
type Image struct {
	Param string // where it is in the request, for error messages
	Data  []byte
	URL   string
}

// HiPrune is the request's "hiprune" object; nil fields take the server's
// defaults.
type HiPrune struct {
	Keep        *int     `json:"keep"`
	KeepRatio   *float64 `json:"keep_ratio"`
	Method      *string  `json:"method"`
	Alpha       *float64 `json:"alpha"`
	ObjectLayer *int     `json:"object_layer"`
}

// Limits bound what a request may hold.
type Limits struct {
	MaxImages int  // images over all messages
	AllowURLs bool // accept http(s) image URLs (the server fetches them)
	MaxStop   int  // stop sequences (0 = 4, OpenAI's limit)
}

// Methods are the pruning methods a request may name.
var Methods = []string{"hiprune", "none", "uniform", "random"}

type wireRequest struct {
	Model         *string           `json:"model"`
	Messages      []json.RawMessage `json:"messages"`
	Stream        *bool             `json:"stream"`
	StreamOptions *struct {
		IncludeUsage *bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	Seed                *int64          `json:"seed"`
	Stop                json.RawMessage `json:"stop"`
	N                   *int            `json:"n"`
	HiPrune             json.RawMessage `json:"hiprune"`
}

type wireMessage struct {
	Role    *string         `json:"role"`
	Content json.RawMessage `json:"content"`
}

type wirePart struct {
	Type     *string         `json:"type"`
	Text     *string         `json:"text"`
	ImageURL json.RawMessage `json:"image_url"`
}

// ParseRequest decodes and checks a chat completion request. Every problem
// is a 400 naming the parameter; fields OpenAI has and this server does
// not use are ignored, as llama-server does.
func ParseRequest(body []byte, lim Limits) (*Request, *Error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, Invalid("", "invalid_json", "the request body is empty: want a JSON object")
	}
	var w wireRequest
	if err := decode(body, &w, false); err != nil {
		return nil, jsonError("", err)
	}
	r := &Request{}
	if w.Model != nil {
		r.Model = *w.Model
	}
	if w.Stream != nil {
		r.Stream = *w.Stream
	}
	if w.StreamOptions != nil && w.StreamOptions.IncludeUsage != nil {
		r.IncludeUsage = *w.StreamOptions.IncludeUsage
	}
	if w.N != nil && *w.N != 1 {
		return nil, Invalid("n", "unsupported_value", "n = %d: this server returns one choice (n = 1)", *w.N)
	}
	mt, param := w.MaxTokens, "max_tokens"
	if mt == nil {
		mt, param = w.MaxCompletionTokens, "max_completion_tokens"
	}
	if mt != nil {
		if *mt < 1 {
			return nil, Invalid(param, "invalid_value", "%s = %d: must be at least 1", param, *mt)
		}
		r.MaxTokens = *mt
	}
	if t := w.Temperature; t != nil {
		if !(*t >= 0 && *t <= 2) {
			return nil, Invalid("temperature", "invalid_value", "temperature = %g: must be in [0, 2]", *t)
		}
		r.Temperature = t
	}
	if p := w.TopP; p != nil {
		if !(*p >= 0 && *p <= 1) {
			return nil, Invalid("top_p", "invalid_value", "top_p = %g: must be in [0, 1]", *p)
		}
		r.TopP = p
	}
	r.Seed = w.Seed
	var err *Error
	if r.Stop, err = parseStop(w.Stop, lim); err != nil {
		return nil, err
	}
	if r.HiPrune, err = parseHiPrune(w.HiPrune); err != nil {
		return nil, err
	}
	if r.Messages, err = parseMessages(w.Messages, lim); err != nil {
		return nil, err
	}
	return r, nil
}

// decode unmarshals one JSON value; strict refuses unknown fields.
func decode(b []byte, v any, strict bool) error {
	d := json.NewDecoder(bytes.NewReader(b))
	if strict {
		d.DisallowUnknownFields()
	}
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// jsonError turns a decoding error of the value at prefix into a 400.
func jsonError(prefix string, err error) *Error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return Invalid(prefix, "invalid_json", "malformed JSON at byte %d: %v", se.Offset, se)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Invalid(prefix, "invalid_json", "malformed JSON: the body ends early")
	case errors.As(err, &te):
		param := join(prefix, te.Field)
		if param == "" {
			return Invalid("", "invalid_type", "the request body is a JSON %s: want an object", te.Value)
		}
		return Invalid(param, "invalid_type", "%s: got a JSON %s, want %s", param, te.Value, typeName(te.Type.String()))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return Invalid(join(prefix, f), "unknown_parameter", "%s: unknown parameter", join(prefix, f))
	}
	return Invalid(prefix, "invalid_json", "malformed JSON: %v", err)
}

func typeName(goType string) string {
	switch {
	case strings.HasPrefix(goType, "*"):
		return typeName(goType[1:])
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "int"):
		return "an integer"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	}
	return "an object"
}

func join(prefix, field string) string {
	switch {
	case prefix == "":
		return field
	case field == "":
		return prefix
	}
	return prefix + "." + field
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

func parseStop(raw json.RawMessage, lim Limits) ([]string, *Error) {
	if isNull(raw) {
		return nil, nil
	}
	var one string
	var many []string
	if err := json.Unmarshal(raw, &one); err == nil {
		many = []string{one}
	} else if err := json.Unmarshal(raw, &many); err != nil {
		return nil, Invalid("stop", "invalid_type", "stop: want a string or an array of strings")
	}
	max := lim.MaxStop
	if max <= 0 {
		max = 4
	}
	var out []string
	for _, s := range many {
		if s != "" {
			out = append(out, s)
		}
	}
	if len(out) > max {
		return nil, Invalid("stop", "invalid_value", "stop: %d sequences, at most %d", len(out), max)
	}
	return out, nil
}

func parseHiPrune(raw json.RawMessage) (HiPrune, *Error) {
	var h HiPrune
	if isNull(raw) {
		return h, nil
	}
	// Strict: a misspelt pruning option must not be silently ignored.
	if err := decode(raw, &h, true); err != nil {
		return h, jsonError("hiprune", err)
	}
	if h.Keep != nil && h.KeepRatio != nil {
		return h, Invalid("hiprune", "invalid_value", "hiprune: give keep or keep_ratio, not both")
	}
	if h.Keep != nil && *h.Keep < 1 {
		return h, Invalid("hiprune.keep", "budget_out_of_range", "hiprune.keep = %d: must be at least 1 image token", *h.Keep)
	}
	if r := h.KeepRatio; r != nil && !(*r > 0 && *r <= 1) {
		return h, Invalid("hiprune.keep_ratio", "budget_out_of_range", "hiprune.keep_ratio = %g: must be in (0, 1]", *r)
	}
	if m := h.Method; m != nil {
		ok := false
		for _, k := range Methods {
			ok = ok || strings.EqualFold(strings.TrimSpace(*m), k)
		}
		if !ok {
			return h, Invalid("hiprune.method", "invalid_value", "hiprune.method = %q: want one of %s", *m, strings.Join(Methods, ", "))
		}
	}
	if a := h.Alpha; a != nil && !(*a >= 0 && *a <= 1) {
		return h, Invalid("hiprune.alpha", "invalid_value", "hiprune.alpha = %g: must be in [0, 1]", *a)
	}
	if l := h.ObjectLayer; l != nil && *l < 1 {
		return h, Invalid("hiprune.object_layer", "invalid_value", "hiprune.object_layer = %d: must be at least 1 (an encoder block, 1-based)", *l)
	}
	return h, nil
}

func parseMessages(raws []json.RawMessage, lim Limits) ([]Message, *Error) {
	if len(raws) == 0 {
		return nil, Invalid("messages", "empty_messages", "messages: must hold at least one message")
	}
	out := make([]Message, 0, len(raws))
	images := 0
	for i, raw := range raws {
		param := fmt.Sprintf("messages[%d]", i)
		var wm wireMessage
		if err := decode(raw, &wm, false); err != nil {
			return nil, jsonError(param, err)
		}
		if wm.Role == nil {
			return nil, Invalid(param+".role", "missing_parameter", "%s.role: missing", param)
		}
		m := Message{Role: *wm.Role}
		switch m.Role {
		case RoleSystem, RoleUser, RoleAssistant:
		case "developer":
			m.Role = RoleSystem
		default:
			return nil, Invalid(param+".role", "invalid_role", "%s.role = %q: unknown or unsupported role (want system, user or assistant)", param, m.Role)
		}
		parts, err := parseContent(wm.Content, param+".content", m.Role, lim)
		if err != nil {
			return nil, err
		}
		for _, p := range parts {
			if p.Image != nil {
				images++
			}
		}
		if lim.MaxImages > 0 && images > lim.MaxImages {
			return nil, Invalid("messages", "too_many_images", "messages: more than %d images in one request (the server's --max-images)", lim.MaxImages)
		}
		m.Parts = parts
		out = append(out, m)
	}
	if last := out[len(out)-1]; last.Role != RoleUser {
		return nil, Invalid(fmt.Sprintf("messages[%d].role", len(out)-1), "invalid_value", "the last message is from %q: it must be from the user, the one to answer", last.Role)
	}
	return out, nil
}

func parseContent(raw json.RawMessage, param, role string, lim Limits) ([]Part, *Error) {
	t := bytes.TrimSpace(raw)
	switch {
	case len(t) == 0 || string(t) == "null":
		if role == RoleAssistant { // an answer that was only tool calls
			return nil, nil
		}
		return nil, Invalid(param, "missing_parameter", "%s: missing (want a string or an array of parts)", param)
	case t[0] == '"':
		var s string
		if err := json.Unmarshal(t, &s); err != nil {
			return nil, jsonError(param, err)
		}
		return []Part{{Text: s}}, nil
	case t[0] != '[':
		return nil, Invalid(param, "invalid_type", "%s: want a string or an array of parts", param)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(t, &raws); err != nil {
		return nil, jsonError(param, err)
	}
	parts := make([]Part, 0, len(raws))
	for j, r := range raws {
		pp := fmt.Sprintf("%s[%d]", param, j)
		var wp wirePart
		if err := decode(r, &wp, false); err != nil {
			return nil, jsonError(pp, err)
		}
		if wp.Type == nil {
			return nil, Invalid(pp+".type", "missing_parameter", "%s.type: missing (want text or image_url)", pp)
		}
		switch *wp.Type {
		case "text":
			if wp.Text == nil {
				return nil, Invalid(pp+".text", "missing_parameter", "%s.text: missing", pp)
			}
			parts = append(parts, Part{Text: *wp.Text})
		case "image_url":
			if role != RoleUser {
				return nil, Invalid(pp, "invalid_value", "%s: images go in user messages, not %s ones", pp, role)
			}
			img, err := parseImageURL(wp.ImageURL, pp+".image_url", lim)
			if err != nil {
				return nil, err
			}
			parts = append(parts, Part{Image: img})
		default:
			return nil, Invalid(pp+".type", "unsupported_content", "%s.type = %q: unsupported (want text or image_url)", pp, *wp.Type)
		}
	}
	return parts, nil
}

func parseImageURL(raw json.RawMessage, param string, lim Limits) (*Image, *Error) {
	var url string
	t := bytes.TrimSpace(raw)
	switch {
	case isNull(t):
		return nil, Invalid(param, "missing_parameter", "%s: missing", param)
	case t[0] == '"': // some clients send the URL itself
		if err := json.Unmarshal(t, &url); err != nil {
			return nil, jsonError(param, err)
		}
	default:
		var o struct {
			URL    *string `json:"url"`
			Detail *string `json:"detail"`
		}
		if err := decode(t, &o, false); err != nil {
			return nil, jsonError(param, err)
		}
		if o.URL == nil {
			return nil, Invalid(param+".url", "missing_parameter", "%s.url: missing", param)
		}
		url, param = *o.URL, param+".url"
	}
	lower := strings.ToLower(url[:min(len(url), 8)])
	switch {
	case strings.HasPrefix(lower, "data:"):
		data, err := DecodeDataURI(url)
		if err != nil {
			return nil, Invalid(param, "invalid_image", "%s: %v", param, err)
		}
		return &Image{Param: param, Data: data}, nil
	case strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://"):
		if !lim.AllowURLs {
			return nil, Invalid(param, "image_url_not_allowed",
				"%s: this server does not fetch image URLs (it must not reach arbitrary addresses); send the image as a data: URI (data:image/png;base64,...), or start the server with --allow-image-urls", param)
		}
		return &Image{Param: param, URL: url}, nil
	}
	return nil, Invalid(param, "invalid_image", "%s: want a data: URI with a base64 JPEG, PNG, GIF or WebP image", param)
}

// DecodeDataURI returns the bytes of a base64 data: URI whose media type is
// an image (or left out).
func DecodeDataURI(uri string) ([]byte, error) {
	rest := uri[len("data:"):]
	meta, payload, ok := strings.Cut(rest, ",")
	if !ok {
		return nil, errors.New("data: URI without a comma before the data")
	}
	fields := strings.Split(meta, ";")
	media := strings.ToLower(strings.TrimSpace(fields[0]))
	b64 := false
	for _, f := range fields[1:] {
		b64 = b64 || strings.EqualFold(strings.TrimSpace(f), "base64")
	}
	if media != "" && !strings.HasPrefix(media, "image/") {
		return nil, fmt.Errorf("data: URI of media type %q: want an image (image/jpeg, image/png, image/gif, image/webp)", media)
	}
	if !b64 {
		return nil, errors.New("data: URI is not base64 (want data:image/...;base64,...)")
	}
	// Line breaks are common in pasted base64; padding is sometimes dropped.
	payload = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, payload)
	if payload == "" {
		return nil, errors.New("data: URI holds no data")
	}
	enc := base64.StdEncoding
	if len(payload)%4 != 0 {
		enc = base64.RawStdEncoding
		payload = strings.TrimRight(payload, "=")
	}
	data, err := enc.DecodeString(payload)
	if err != nil {
		var ce base64.CorruptInputError
		if errors.As(err, &ce) {
			return nil, fmt.Errorf("bad base64 at byte %d of the data", int64(ce))
		}
		return nil, fmt.Errorf("bad base64: %w", err)
	}
	return data, nil
}
