package llava

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/llava/imageprep"
)

// ImageMarker marks where an image goes in a message's text. Images given
// without markers are placed at the start of the message, one per line.
const ImageMarker = "<image>"

// SessionConfig sizes a session's llama.cpp context.
type SessionConfig struct {
	NCtx      int // 0 = 4096 (capped at the model's training length)
	NBatch    int // 0 = 512
	FlashAttn bridge.FlashAttn
	// Template overrides the model's chat template: a template text or a
	// llama.cpp built-in name ("vicuna", "chatml", ...). "llava" forces the
	// LLaVA-1.5 format "USER: <image>\n{question} ASSISTANT:".
	Template string
}

// Session is one conversation: a llama.cpp context whose KV cache holds
// every earlier turn. Use it from one goroutine at a time.
type Session struct {
	p        *Pipeline
	lctx     *bridge.Context
	mu       sync.Mutex
	nPast    int
	history  []bridge.ChatMessage
	template string // "" means the LLaVA-1.5 format
	// rendered is the text form of everything in the KV cache (images as
	// ImageMarker), so a template's rendering of the whole conversation can
	// be cut to what is new, whatever ended the previous answer.
	rendered string
	lastEOG  bool
	gap      int // KV cells beyond positions (M-RoPE images through mtmd)
}

// NewSession creates a conversation over the pipeline's model.
func (p *Pipeline) NewSession(sc SessionConfig) (*Session, error) {
	lctx, err := bridge.NewContext(p.model, bridge.ContextParams{
		NCtx: sc.NCtx, NBatch: sc.NBatch, Threads: p.cfg.Threads, FlashAttn: sc.FlashAttn,
	})
	if err != nil {
		return nil, err
	}
	s := &Session{p: p, lctx: lctx}
	switch sc.Template {
	case "llava":
		s.template = ""
	case "":
		s.template = p.model.ChatTemplate()
	default:
		s.template = sc.Template
	}
	if s.template != "" {
		// llama.cpp recognises templates by their text and does not run
		// Jinja; fall back to the LLaVA-1.5 format for ones it does not know.
		if _, err := bridge.ApplyChatTemplate(s.template, []bridge.ChatMessage{{Role: "user", Content: "x"}}, true); err != nil {
			p.log.Warn("chat template not recognised by llama.cpp; using the LLaVA-1.5 format")
			s.template = ""
		}
	}
	return s, nil
}

// Close frees the session's context.
func (s *Session) Close() { s.lctx.Close() }

// Context exposes the llama.cpp context (for tests and benchmarks).
func (s *Session) Context() *bridge.Context { return s.lctx }

// NCtx is the context length in tokens. llama.cpp may round the requested
// SessionConfig.NCtx up (to a multiple of 256).
func (s *Session) NCtx() int { return s.lctx.NCtx() }

// Reset forgets the conversation.
func (s *Session) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lctx.ClearKV()
	s.nPast = 0
	s.history = nil
	s.rendered = ""
	s.lastEOG = false
	s.gap = 0
}

// Positions is the number of positions the conversation occupies.
func (s *Session) Positions() int { return s.nPast }

// Turn is one user message and how to answer it.
type Turn struct {
	Text   string
	Images []*Image
	// Prepared are images already encoded and pruned (Pipeline.Prune), used
	// in place of Images (give one or the other); the caller keeps them and
	// may use them again in other turns and sessions.
	Prepared []*Pruned
	Prune    Options
	Gen      GenOptions
	// OnToken receives the answer as it is generated, in whole UTF-8
	// characters; returning an error stops generation with that error.
	OnToken func(piece string) error
	// OnImage is told when each image has been encoded and pruned.
	OnImage func(ImageStats)

	messages []Message // Append's messages, evaluated in place of Text
}

// ImageStats describe one image of a turn.
type ImageStats struct {
	Name                       string
	TokensBefore, TokensAfter  int
	Preprocess, Encode, Select time.Duration
	Kept                       []int // kept positions (Pruned.Kept)
	GridW, GridH               int   // one view's patch grid
	Views                      int   // views the image was cut into (1 for LLaVA-1.5)
	// Mask holds each view's kept patches, for imageprep.WriteMasksPNG.
	Mask []imageprep.MaskView
}

// Stats describe one turn.
type Stats struct {
	Images       []ImageStats
	TextTokens   int           // prompt text tokens evaluated this turn
	ImageTokens  int           // image embeddings evaluated this turn
	Prefill      time.Duration // LM evaluation of the prompt (text and images)
	TTFT         time.Duration // turn start to first answer token
	DecodeTokens int           // answer tokens generated
	Decode       time.Duration // time spent generating them after the first
	KVCells      int           // KV-cache cells the conversation occupies
	KVImageBytes int64         // KV-cache memory taken by this turn's images
	StopReason   string        // "eog", "limit", "context"
	Prompt       string        // text added to the context this turn (images as ImageMarker)

	start   time.Time
	eogText string
	samples int
}

// DecodeTPS is the generation speed after the first token.
func (st *Stats) DecodeTPS() float64 {
	if st.samples <= 1 || st.Decode <= 0 {
		return 0
	}
	return float64(st.samples-1) / st.Decode.Seconds()
}

func (pr *Pruned) stats() ImageStats {
	return ImageStats{
		Name: pr.Name, TokensBefore: pr.NTokens, TokensAfter: len(pr.Kept),
		Preprocess: pr.Preprocess, Encode: pr.Encode, Select: pr.Select, Kept: pr.Kept,
		GridW: pr.GridW, GridH: pr.GridH, Views: pr.Views, Mask: pr.Mask,
	}
}

// segment is a piece of the prompt: text or an image's kept embeddings.
type segment struct {
	text  string
	toks  []int32 // text, tokenized
	image *Pruned
}

// Ask evaluates a user turn and generates the answer.
func (s *Session) Ask(ctx context.Context, t Turn) (string, *Stats, error) {
	st, err := s.Prefill(ctx, t)
	if err != nil {
		return "", nil, err
	}
	answer, err := s.Generate(ctx, t, st)
	return answer, st, err
}

// Prefill evaluates a user turn (its text and its images, encoded and
// pruned) into the context without generating; Generate continues it.
// The context's logits are then the first answer token's.
func (s *Session) Prefill(ctx context.Context, t Turn) (*Stats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := time.Now()
	if err := t.Prune.Validate(); err != nil {
		return nil, err
	}
	if err := t.Gen.Validate(); err != nil {
		return nil, err
	}
	if len(t.Images) > 0 && s.p.enc == nil && s.p.mtmd == nil {
		return nil, fmt.Errorf("%w (give --mmproj)", ErrNoVision)
	}
	if len(t.Images) > 0 && len(t.Prepared) > 0 {
		return nil, fmt.Errorf("%w: a turn takes images or prepared images, not both", ErrOptions)
	}
	content, err := placeImages(t.Text, len(t.Images)+len(t.Prepared))
	if err != nil {
		return nil, err
	}
	h := len(s.history)
	promptText, rendered, err := s.format(t, content)
	if err != nil {
		return nil, err
	}
	st := &Stats{start: start, Prompt: promptText}
	undo := func() { s.history = s.history[:h] }
	if s.p.mtmd != nil {
		return s.prefillMtmd(ctx, t, promptText, rendered, st, undo)
	}
	// Encode and prune every image first, so the LM sees one prefill.
	// Images prepared here are released after the turn; prepared ones given
	// in the turn stay the caller's.
	pruned := make([]*Pruned, len(t.Images))
	defer func() {
		for _, pr := range pruned {
			if pr != nil {
				pr.Release()
			}
		}
	}()
	report := func(pr *Pruned) {
		is := pr.stats()
		st.Images = append(st.Images, is)
		if t.OnImage != nil {
			t.OnImage(is)
		}
	}
	// Tokenize the text and count the image tokens before any encoding: a
	// turn that cannot fit is refused before seconds of work.
	parts := strings.Split(promptText, ImageMarker)
	partToks := make([][]int32, len(parts))
	nText, nImage := 0, 0
	for i, part := range parts {
		// BOS goes first in the context, before text only (as before the
		// image-first layout: an image first means no BOS).
		addBOS := s.nPast == 0 && i == 0 && s.p.model.AddBOS()
		if part == "" {
			continue
		}
		toks, err := s.p.model.Tokenize(part, addBOS, true)
		if err != nil {
			undo()
			return nil, err
		}
		partToks[i] = toks
		nText += len(toks)
	}
	for _, pr := range t.Prepared {
		nImage += len(pr.Kept)
	}
	for _, img := range t.Images {
		nImage += s.p.imageTokens(img, t.Prune)
	}
	if n, room := nText+nImage, s.lctx.NCtx()-s.nPast; n > room {
		undo()
		return nil, fmt.Errorf("the message needs %d tokens (%d text, %d image) but the %d-token context has %d left: %w",
			n, nText, nImage, s.lctx.NCtx(), room, bridge.ErrContextFull)
	}
	images := t.Prepared
	for i, img := range t.Images {
		pr, err := s.p.PrepareImage(ctx, img, t.Prune)
		if err != nil {
			undo()
			return nil, err
		}
		pruned[i] = pr
		report(pr)
	}
	if len(t.Images) > 0 {
		images = pruned
	} else {
		for _, pr := range images {
			report(pr)
		}
	}
	segs := make([]segment, 0, 2*len(parts))
	for i, p := range parts {
		if p != "" {
			segs = append(segs, segment{text: p, toks: partToks[i]})
		}
		if i < len(images) {
			segs = append(segs, segment{image: images[i]})
		}
	}
	checkpoint := s.nPast
	t0 := time.Now()
	if err := s.evalSegments(ctx, segs, st); err != nil {
		// Leave the cache as it was before this turn.
		s.lctx.TrimKV(checkpoint)
		s.nPast = checkpoint
		undo()
		return nil, err
	}
	st.Prefill = time.Since(t0)
	st.KVImageBytes = int64(st.ImageTokens) * s.lctx.KVBytesPerCell()
	st.KVCells = s.lctx.KVCells()
	s.rendered = rendered
	return st, nil
}

// Generate produces the answer to the turn Prefill evaluated.
func (s *Session) Generate(ctx context.Context, t Turn, st *Stats) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	answer, err := s.generate(ctx, t, st)
	s.history = append(s.history, bridge.ChatMessage{Role: "assistant", Content: answer})
	s.rendered += answer
	s.lastEOG = st.StopReason == "eog"
	if s.lastEOG {
		s.rendered += st.eogText
	}
	st.KVCells = s.cells()
	return answer, err
}

// placeImages checks markers against images, adding markers when absent.
func placeImages(text string, n int) (string, error) {
	k := strings.Count(text, ImageMarker)
	switch {
	case k == n:
		return text, nil
	case k == 0:
		return strings.Repeat(ImageMarker+"\n", n) + text, nil
	default:
		return "", fmt.Errorf("%w: the message has %d %s markers but %d images", ErrOptions, k, ImageMarker, n)
	}
}

// formatTurn returns the text to add to the context for a new user message
// (with image markers) and what the context will then hold as text; it
// records the message in the history.
func (s *Session) formatTurn(content string) (add, rendered string, err error) {
	if s.template == "" {
		add = "USER: " + content + " ASSISTANT:"
		if s.rendered != "" && !s.lastEOG {
			// LLaVA-1.5 closes each answer with the EOS token.
			add = s.p.model.TokenText(s.p.model.EOS()) + add
		}
		s.history = append(s.history, bridge.ChatMessage{Role: "user", Content: content})
		return add, s.rendered + add, nil
	}
	s.history = append(s.history, bridge.ChatMessage{Role: "user", Content: content})
	cur, err := bridge.ApplyChatTemplate(s.template, s.history, true)
	if err != nil {
		s.history = s.history[:len(s.history)-1]
		return "", "", fmt.Errorf("chat template: %w", err)
	}
	if strings.HasPrefix(cur, s.rendered) {
		return cur[len(s.rendered):], cur, nil
	}
	// Some templates re-render earlier turns (a system prompt that moves,
	// trimmed whitespace); the KV cache cannot follow, so continue after
	// the common prefix.
	n := 0
	for n < len(s.rendered) && n < len(cur) && s.rendered[n] == cur[n] {
		n++
	}
	s.p.log.Warn("chat template re-renders earlier turns; continuing from the common prefix", "prefix", n, "rendered", len(s.rendered))
	return cur[n:], cur, nil
}

func (s *Session) evalSegments(ctx context.Context, segs []segment, st *Stats) error {
	w := s.p.model.NEmbd()
	for i, sg := range segs {
		last := i == len(segs)-1
		if sg.image != nil {
			rows := sg.image.Embd
			n := len(rows) / w
			if err := s.decodeBatches(ctx, n, func(off, k int, logits bool) error {
				return s.lctx.DecodeEmbeddings(rows[off*w:(off+k)*w], s.nPast, last && logits)
			}); err != nil {
				return fmt.Errorf("image: %w", err)
			}
			st.ImageTokens += n
			continue
		}
		t := sg.toks
		if err := s.decodeBatches(ctx, len(t), func(off, k int, logits bool) error {
			return s.lctx.DecodeTokens(t[off:off+k], s.nPast, last && logits)
		}); err != nil {
			return fmt.Errorf("prompt: %w", err)
		}
		st.TextTokens += len(t)
	}
	return nil
}

// decodeBatches evaluates n inputs in context-batch-sized pieces, each
// taking the pipeline's compute slot, advancing nPast; logits is set for the
// piece that holds the last input.
func (s *Session) decodeBatches(ctx context.Context, n int, decode func(off, k int, logits bool) error) error {
	nb := s.lctx.NBatch()
	for off := 0; off < n; off += nb {
		k := min(nb, n-off)
		if err := s.p.compute(ctx, func() error { return decode(off, k, off+k == n) }); err != nil {
			return err
		}
		s.nPast += k
	}
	return nil
}

func (s *Session) generate(ctx context.Context, t Turn, st *Stats) (string, error) {
	m := s.p.model
	smp := bridge.NewSampler(bridge.SamplerParams{
		Temp: t.Gen.Temp, TopK: t.Gen.TopK, TopP: t.Gen.TopP, MinP: t.Gen.MinP,
		RepeatPenalty: t.Gen.RepeatPenalty, RepeatLastN: t.Gen.RepeatLastN, Seed: t.Gen.Seed,
	})
	defer smp.Close()
	var out strings.Builder
	var pending []byte // bytes of an incomplete UTF-8 character
	emit := func(b []byte, flush bool) error {
		pending = append(pending, b...)
		n := len(pending)
		if !flush {
			// Hold back a trailing partial character.
			for k := 1; k <= 3 && k <= n; k++ {
				c := pending[n-k]
				if c&0xC0 != 0x80 { // a lead byte or ASCII
					if !utf8.FullRune(pending[n-k:]) {
						n -= k
					}
					break
				}
			}
		}
		if n == 0 {
			return nil
		}
		piece := string(pending[:n])
		pending = append(pending[:0], pending[n:]...)
		out.WriteString(piece)
		if t.OnToken != nil {
			return t.OnToken(piece)
		}
		return nil
	}
	var firstAt time.Time
	st.StopReason = "limit"
	var lastAt time.Time
	for i := 0; t.Gen.MaxTokens < 0 || i < t.Gen.MaxTokens; i++ {
		if err := ctx.Err(); err != nil {
			_ = emit(nil, true)
			return out.String(), err
		}
		tok := smp.Sample(s.lctx)
		lastAt = time.Now()
		st.samples++
		if i == 0 {
			firstAt = lastAt
			st.TTFT = firstAt.Sub(st.start)
		}
		if m.IsEOG(tok) {
			st.StopReason = "eog"
			st.eogText = m.TokenText(tok)
			// Keep the end-of-turn token in the cache so the next turn's
			// template text follows a complete assistant message (a full
			// context just leaves it out).
			if err := s.p.compute(ctx, func() error { return s.lctx.DecodeTokens([]int32{tok}, s.nPast, false) }); err == nil {
				s.nPast++
			}
			break
		}
		st.DecodeTokens++
		if err := emit(m.TokenPiece(tok), false); err != nil {
			return out.String(), err
		}
		if s.nPast >= s.lctx.NCtx() {
			st.StopReason = "context"
			break
		}
		if err := s.p.compute(ctx, func() error { return s.lctx.DecodeTokens([]int32{tok}, s.nPast, true) }); err != nil {
			if errors.Is(err, bridge.ErrContextFull) {
				st.StopReason = "context"
				break
			}
			return out.String(), err
		}
		s.nPast++
	}
	// Decode speed counts sampled tokens after the first, up to the last
	// sample: the trailing decode (which keeps the answer in the cache for
	// the next turn) produces no token.
	st.Decode = lastAt.Sub(firstAt)
	if err := emit(nil, true); err != nil {
		return out.String(), err
	}
	return out.String(), nil
}
