package openai

import "strings"

// Usage counts tokens; the image fields are hiprune-go's: image tokens
// before and after pruning, over every image of the request.
type Usage struct {
	PromptTokens      int `json:"prompt_tokens"`
	CompletionTokens  int `json:"completion_tokens"`
	TotalTokens       int `json:"total_tokens"`
	ImageTokensBefore int `json:"image_tokens_before"`
	ImageTokensAfter  int `json:"image_tokens_after"`
	// PromptDetails counts the prompt tokens a request did not evaluate
	// because the slot's context already held them, as OpenAI reports them.
	PromptDetails *PromptDetails `json:"prompt_tokens_details,omitempty"`
}

// PromptDetails is OpenAI's usage.prompt_tokens_details.
type PromptDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

// Timings are the CLI's --timings line as an object, plus llama-server's
// names for the same prompt and generation figures.
type Timings struct {
	Prune             string  `json:"prune"`
	ImageTokensBefore int     `json:"image_tokens_before"`
	ImageTokensAfter  int     `json:"image_tokens_after"`
	EncodeMS          float64 `json:"encode_ms"`
	SelectMS          float64 `json:"select_ms"`
	PrefillMS         float64 `json:"prefill_ms"`
	TTFTMS            float64 `json:"ttft_ms"`
	DecodeTPS         float64 `json:"decode_tokens_per_second"`
	DecodeTokens      int     `json:"decode_tokens"`
	KVCells           int     `json:"kv_cells"`
	TextTokens        int     `json:"text_tokens"`
	Stop              string  `json:"stop"`
	// ImagesEncoded ran the vision encoder; ImagesCached came from the
	// image cache; ImagesReused were already in the slot's context.
	ImagesEncoded int `json:"images_encoded"`
	ImagesCached  int `json:"images_cached"`
	ImagesReused  int `json:"images_reused"`

	// llama-server's names: prompt_n counts the prompt tokens evaluated,
	// cache_n those reused from the slot's context.
	CacheN int `json:"cache_n"`

	PromptN            int     `json:"prompt_n"`
	PromptMS           float64 `json:"prompt_ms"`
	PredictedN         int     `json:"predicted_n"`
	PredictedMS        float64 `json:"predicted_ms"`
	PredictedPerSecond float64 `json:"predicted_per_second"`
}

// ChatMessage is an answer message.
type ChatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Choice is a non-streaming answer.
type Choice struct {
	Index        int         `json:"index"`
	Message      ChatMessage `json:"message"`
	FinishReason string      `json:"finish_reason"`
}

// Completion is a chat.completion response.
type Completion struct {
	ID      string   `json:"id"`
	Object  string   `json:"object"` // "chat.completion"
	Created int64    `json:"created"`
	Model   string   `json:"model"`
	Choices []Choice `json:"choices"`
	Usage   Usage    `json:"usage"`
	Timings *Timings `json:"timings,omitempty"`
}

// Delta is a streamed piece of the answer.
type Delta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

// ChunkChoice is one choice of a stream chunk; FinishReason is null until
// the last.
type ChunkChoice struct {
	Index        int     `json:"index"`
	Delta        Delta   `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

// Chunk is a chat.completion.chunk event.
type Chunk struct {
	ID      string        `json:"id"`
	Object  string        `json:"object"` // "chat.completion.chunk"
	Created int64         `json:"created"`
	Model   string        `json:"model"`
	Choices []ChunkChoice `json:"choices"`
	Usage   *Usage        `json:"usage,omitempty"`
	Timings *Timings      `json:"timings,omitempty"`
}

// Model is an entry of GET /v1/models.
type Model struct {
	ID      string `json:"id"`
	Object  string `json:"object"` // "model"
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// ModelList is GET /v1/models.
type ModelList struct {
	Object string  `json:"object"` // "list"
	Data   []Model `json:"data"`
}

// StopMatcher cuts generated text before the first stop sequence. Text
// that could still grow into one is held back until it cannot.
type StopMatcher struct {
	stops []string
	held  string
}

// NewStopMatcher matches stops (none: text passes through).
func NewStopMatcher(stops []string) *StopMatcher { return &StopMatcher{stops: stops} }

// Push adds a piece and returns the text now safe to send; stopped means a
// stop sequence was reached (it and what follows are dropped).
func (m *StopMatcher) Push(piece string) (emit string, stopped bool) {
	if len(m.stops) == 0 {
		return piece, false
	}
	m.held += piece
	first := -1
	for _, s := range m.stops {
		if i := strings.Index(m.held, s); i >= 0 && (first < 0 || i < first) {
			first = i
		}
	}
	if first >= 0 {
		emit, m.held = m.held[:first], ""
		return emit, true
	}
	keep := 0
	for _, s := range m.stops {
		for k := min(len(s)-1, len(m.held)); k > keep; k-- {
			if strings.HasSuffix(m.held, s[:k]) {
				keep = k
				break
			}
		}
	}
	emit, m.held = m.held[:len(m.held)-keep], m.held[len(m.held)-keep:]
	return emit, false
}

// Flush returns what is held back once generation has ended.
func (m *StopMatcher) Flush() string {
	s := m.held
	m.held = ""
	return s
}
