package llava

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
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
	FlashAttn FlashAttn
	// Template overrides the model's chat template: a template text or a
	// llama.cpp built-in name ("vicuna", "chatml", ...). "llava" forces the
	// LLaVA-1.5 format "USER: <image>\n{question} ASSISTANT:".
	Template string
}

// Session is one conversation: a llama.cpp context whose KV cache holds
// every earlier turn. Its methods serialise on the session (a second call
// waits for the first), but a conversation is one goroutine's to drive.
type Session struct {
	p        *Pipeline
	lctx     *bridge.Context
	mu       sync.Mutex
	closed   atomic.Bool // set under mu; read without it by the accessors
	nCtx     int
	nPast    int
	history  []bridge.ChatMessage
	template string // "" means the LLaVA-1.5 format
	// rendered is the text form of everything in the KV cache (images as
	// ImageMarker), so a template's rendering of the whole conversation can
	// be cut to what is new, whatever ended the previous answer.
	rendered string
	lastEOG  bool
	// spans are the M-RoPE images in the context, whose KV cells are not
	// one per position (qwen.go).
	spans []span
	// kv records what each position holds, for Sync's prefix reuse (each
	// position an M-RoPE image spans counts as one of its rows); kvOK is
	// false once something it cannot describe went in (mtmd chunks).
	kv     []cell
	kvOK   bool
	images map[string]ImageStats // images held in kv, by cell.img
	epoch  uint64                // advances with every change, to retire Replies
}

// cell is what one position of the context holds: a text token, or row
// row of the image whose rows are keyed img.
type cell struct {
	tok int32
	row int32
	img string
}

// ErrClosed is returned by the methods of a closed Pipeline or Session.
var ErrClosed = errors.New("llava: closed")

// NewSession creates a conversation over the pipeline's model.
func (p *Pipeline) NewSession(sc SessionConfig) (*Session, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	lctx, err := bridge.NewContext(p.model, bridge.ContextParams{
		NCtx: sc.NCtx, NBatch: sc.NBatch, Threads: p.cfg.Threads, FlashAttn: sc.FlashAttn,
	})
	if err != nil {
		return nil, err
	}
	s := &Session{p: p, lctx: lctx, nCtx: lctx.NCtx(), kvOK: true, images: map[string]ImageStats{}}
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
	p.track(s)
	return s, nil
}

// Close frees the session's context; it waits for a call in progress.
// Safe to call twice.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed.Load() {
		s.closed.Store(true)
		s.lctx.Close()
		s.p.untrack(s)
	}
	return nil
}

// lock takes the session for one call, or says it is closed.
func (s *Session) lock() error {
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return fmt.Errorf("session: %w", ErrClosed)
	}
	return nil
}

// Context exposes the llama.cpp context, for tests and benchmarks; nil
// once the session is closed.
func (s *Session) Context() *bridge.Context {
	if s.closed.Load() {
		return nil
	}
	return s.lctx
}

// NCtx is the context length in tokens (0 once closed). llama.cpp may
// round the requested SessionConfig.NCtx up (to a multiple of 256).
func (s *Session) NCtx() int {
	if s.closed.Load() {
		return 0
	}
	return s.nCtx
}

// Reset forgets the conversation.
func (s *Session) Reset() error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.reset()
	return nil
}

func (s *Session) reset() {
	s.lctx.ClearKV()
	s.nPast = 0
	s.history = nil
	s.rendered = ""
	s.lastEOG = false
	s.spans = s.spans[:0]
	s.kv, s.kvOK = s.kv[:0], true
	clear(s.images)
	s.epoch++
}

// trim drops every position from n on (never inside an image).
func (s *Session) trim(n int) {
	s.lctx.TrimKV(n)
	s.nPast = n
	if s.kvOK {
		s.kv = s.kv[:n]
	}
	for len(s.spans) > 0 && s.spans[len(s.spans)-1].pos0 >= n {
		s.spans = s.spans[:len(s.spans)-1]
	}
}

// Positions is the number of positions the conversation occupies. It
// waits for a call in progress, so it must not be called from that call's
// OnToken or OnImage.
func (s *Session) Positions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nPast
}

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
	// It runs inside the session's call: it must not call the session's
	// methods that wait for it (all but NCtx and Context).
	OnToken func(piece string) error
	// OnImage is told when each image has been encoded and pruned.
	OnImage func(ImageStats)

	messages []Message // Append's messages, evaluated in place of Text
}

// ImageStats describe one image of a turn.
type ImageStats struct {
	Name                       string
	TokensBefore, TokensAfter  int
	Preprocess, Encode, Select time.Duration // zero when Cached or Reused
	Kept                       []int         // kept positions (Pruned.Kept)
	GridW, GridH               int           // one view's patch grid
	Views                      int           // views the image was cut into (1 for LLaVA-1.5)
	// Mask holds each view's kept patches, for imageprep.WriteMasksPNG.
	Mask []imageprep.MaskView
	// Cached: the kept rows came from the pipeline's image cache, not the
	// encoder. Reused: they were already in the context (Session.Sync) and
	// were not evaluated again.
	Cached, Reused bool
}

// StopReason says why generation ended.
type StopReason string

const (
	StopEOG       StopReason = "eog"       // the model ended its answer
	StopLimit     StopReason = "limit"     // GenOptions.MaxTokens were generated
	StopContext   StopReason = "context"   // the context is full
	StopCancelled StopReason = "cancelled" // the context.Context ended, or OnToken returned an error
)

// Stats describe one turn (or what Append or Sync evaluated).
type Stats struct {
	Images       []ImageStats
	TextTokens   int           // prompt text tokens evaluated
	ImageTokens  int           // image embeddings evaluated
	ReusedTokens int           // tokens (KV cells) kept from the context's earlier contents (Sync)
	Prefill      time.Duration // LM evaluation of the prompt (text and images)
	TTFT         time.Duration // turn start to first answer token
	DecodeTokens int           // answer tokens generated (the end-of-generation token not counted)
	Decode       time.Duration // time from the first sampled token to the last
	KVCells      int           // KV-cache cells the conversation occupies
	KVImageBytes int64         // KV-cache memory taken by the images evaluated
	StopReason   StopReason    // set by Generate
	Prompt       string        // text added to the context (images as ImageMarker)
}

// DecodeTPS is the generation speed after the first token.
func (st *Stats) DecodeTPS() float64 {
	n := st.DecodeTokens
	if st.StopReason == StopEOG {
		n++ // the end-of-generation token was sampled too
	}
	if n <= 1 || st.Decode <= 0 {
		return 0
	}
	return float64(n-1) / st.Decode.Seconds()
}

func (pr *Pruned) stats() ImageStats {
	return ImageStats{
		Name: pr.Name, TokensBefore: pr.NTokens, TokensAfter: len(pr.Kept),
		Preprocess: pr.Preprocess, Encode: pr.Encode, Select: pr.Select, Kept: pr.Kept,
		GridW: pr.GridW, GridH: pr.GridH, Views: pr.Views, Mask: pr.Mask,
	}
}

// Reply is a prefilled turn whose answer is still to be generated.
type Reply struct {
	// Stats are the prefill's figures; Generate adds the answer's.
	Stats Stats

	s       *Session
	t       Turn
	start   time.Time
	epoch   uint64
	eogText string
	done    bool
}

// Ask evaluates a user turn and generates the answer.
func (s *Session) Ask(ctx context.Context, t Turn) (string, *Stats, error) {
	r, err := s.Prefill(ctx, t)
	if err != nil {
		return "", nil, err
	}
	answer, err := r.Generate(ctx)
	return answer, &r.Stats, err
}

// Prefill evaluates a user turn (its text and its images, encoded and
// pruned) into the context without generating; the Reply's Generate
// continues it. The context's logits are then the first answer token's.
// On error the session is left as it was.
func (s *Session) Prefill(ctx context.Context, t Turn) (*Reply, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return s.prefill(ctx, t)
}

func (s *Session) prefill(ctx context.Context, t Turn) (*Reply, error) {
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
	r := &Reply{s: s, t: t, start: start, Stats: Stats{Prompt: promptText}}
	undo := func() { s.history = s.history[:h] }
	if s.p.mtmd != nil {
		if err := s.prefillMtmd(ctx, t, promptText, &r.Stats); err != nil {
			undo()
			return nil, err
		}
	} else if err := s.evalPrompt(ctx, promptText, t, &r.Stats, false); err != nil {
		undo()
		return nil, err
	}
	s.rendered = rendered
	s.epoch++
	r.epoch = s.epoch
	return r, nil
}

// part is a piece of a prompt: text tokens, or an image to evaluate.
type part struct {
	toks  []int32
	img   *Image  // to encode (or find in the cache)
	pr    *Pruned // or already prepared
	key   string  // the image's rows' key
	reuse bool    // the image is already in the context at this place
}

// evalPrompt evaluates text (with ImageMarker where t's images go) after
// what the context holds. With sync, text is the whole conversation: the
// longest prefix the context already holds is kept and the rest replaced.
// On error the context is as before (without sync) or trimmed to the kept
// prefix (with it).
func (s *Session) evalPrompt(ctx context.Context, text string, t Turn, st *Stats, sync bool) error {
	if sync {
		s.ensureKV()
	}
	parts, err := s.split(text, t, sync)
	if err != nil {
		return err
	}
	if sync {
		keep, rest := s.matchPrefix(parts)
		if keep < s.nPast {
			s.trim(keep)
			s.dropImages()
		}
		st.ReusedTokens = s.cells()
		parts = rest
	}
	// Count before any encoding: a turn that cannot fit is refused before
	// seconds of work. It must fit in KV cells and in positions, which
	// differ for M-RoPE images (qwen.go).
	nText, nImage, nImagePos := 0, 0, 0
	for _, pt := range parts {
		var c, np int
		switch {
		case pt.reuse:
		case pt.pr != nil:
			c, np = s.p.prunedSpan(pt.pr)
		case pt.img != nil:
			c, np = s.p.imageSpan(pt.img, t.Prune)
		default:
			nText += len(pt.toks)
		}
		nImage += c
		nImagePos += np
	}
	if n, room := nText+nImage, s.lctx.NCtx()-s.cells(); n > room {
		return fmt.Errorf("the message needs %d tokens (%d text, %d image) but the %d-token context has %d left: %w",
			n, nText, nImage, s.lctx.NCtx(), room, ErrContextFull)
	}
	if n, room := nText+nImagePos, s.lctx.NCtx()-s.nPast; n > room {
		return fmt.Errorf("the message needs %d positions (%d text, %d image) but the %d-token context has %d left: %w",
			n, nText, nImagePos, s.lctx.NCtx(), room, ErrContextFull)
	}
	// Encode and prune every image first, so the LM sees one prefill.
	// Images encoded here are released after the turn unless the cache
	// keeps them; prepared ones stay the caller's.
	var owned []*Pruned
	defer func() {
		for _, pr := range owned {
			pr.Release()
		}
	}()
	for i := range parts {
		pt := &parts[i]
		var is ImageStats
		switch {
		case pt.reuse:
			is = s.images[pt.key]
			is.Preprocess, is.Encode, is.Select, is.Cached, is.Reused = 0, 0, 0, false, true
		case pt.pr != nil:
			is = pt.pr.stats()
		case pt.img != nil:
			pr, mine, cached, err := s.p.prepareShared(ctx, pt.img, t.Prune)
			if err != nil {
				return err
			}
			if mine {
				owned = append(owned, pr)
			}
			pt.pr = pr
			is = pr.stats()
			if cached {
				is.Preprocess, is.Encode, is.Select, is.Cached = 0, 0, 0, true
			}
		default:
			continue
		}
		is.Name = imageName(pt, is.Name)
		st.Images = append(st.Images, is)
		if t.OnImage != nil {
			t.OnImage(is)
		}
	}
	checkpoint := s.nPast
	t0 := time.Now()
	if err := s.evalParts(ctx, parts, st); err != nil {
		// Leave the cache as it was before this call.
		s.trim(checkpoint)
		s.dropImages()
		return err
	}
	st.Prefill = time.Since(t0)
	st.KVImageBytes = int64(st.ImageTokens) * s.lctx.KVBytesPerCell()
	st.KVCells = s.cells()
	return nil
}

// imageName names an image in stats: the name it was given now (a cached or
// reused image keeps its rows, not its old name).
func imageName(pt *part, old string) string {
	if pt.img != nil && pt.img.Name != "" {
		return pt.img.Name
	}
	return old
}

// split tokenizes text around its image markers; from the start of the
// context when fromStart (Sync), else after what it holds. Each image gets
// the family's delimiters as mtmd adds them: tokenized on their own, the
// begin text after the text before the image, the end text before the
// text after it.
func (s *Session) split(text string, t Turn, fromStart bool) ([]part, error) {
	texts := strings.Split(text, ImageMarker)
	var parts []part
	tokenize := func(tx string, addBOS bool) ([]int32, error) { return s.p.model.Tokenize(tx, addBOS, true) }
	for i, tx := range texts {
		var toks []int32
		if i > 0 && s.p.imgEnd != "" {
			end, err := tokenize(s.p.imgEnd, false)
			if err != nil {
				return nil, err
			}
			toks = append(toks, end...)
		}
		beg := i < len(texts)-1 && s.p.imgBeg != ""
		if tx != "" || (i == 0 && beg) {
			// BOS goes first in the context, before text only (as before the
			// image-first layout: an image first means no BOS, unless the
			// family's delimiter text comes first, as in mtmd).
			addBOS := (fromStart || s.nPast == 0) && i == 0 && s.p.model.AddBOS()
			tt, err := tokenize(tx, addBOS)
			if err != nil {
				return nil, err
			}
			toks = append(toks, tt...)
		}
		if beg {
			b, err := tokenize(s.p.imgBeg, false)
			if err != nil {
				return nil, err
			}
			toks = append(toks, b...)
		}
		if len(toks) > 0 {
			parts = append(parts, part{toks: toks})
		}
		if i == len(texts)-1 {
			break
		}
		switch k := i; {
		case k < len(t.Prepared):
			pr := t.Prepared[k]
			if pr.Embd == nil {
				return nil, fmt.Errorf("%w: prepared image %s was released", ErrOptions, pr.Name)
			}
			parts = append(parts, part{pr: pr, key: pr.key})
		case k < len(t.Images):
			img := t.Images[k]
			parts = append(parts, part{img: img, key: img.id() + t.Prune.key()})
		}
	}
	return parts, nil
}

// matchPrefix finds how many positions of the context already hold the
// start of parts, and returns that count and what remains to evaluate.
// An image matches as a whole: its rows' key and all of its rows.
func (s *Session) matchPrefix(parts []part) (int, []part) {
	pos := 0
	for i, pt := range parts {
		if pt.toks != nil {
			j := 0
			for j < len(pt.toks) && pos < len(s.kv) && s.kv[pos].img == "" && s.kv[pos].tok == pt.toks[j] {
				j++
				pos++
			}
			if j < len(pt.toks) {
				rest := append(keepReused(parts[:i]), part{toks: pt.toks[j:]})
				return pos, append(rest, parts[i+1:]...)
			}
			continue
		}
		n := 0
		for pos+n < len(s.kv) && s.kv[pos+n].img == pt.key && pt.key != "" && int(s.kv[pos+n].row) == n {
			n++
		}
		if n == 0 || (pos+n < len(s.kv) && s.kv[pos+n].img == pt.key) {
			return pos, append(keepReused(parts[:i]), parts[i:]...)
		}
		pos += n
		parts[i].reuse = true
	}
	return pos, keepReused(parts)
}

// keepReused are the images of a matched prefix: they are not evaluated,
// but still reported.
func keepReused(parts []part) []part {
	var out []part
	for _, pt := range parts {
		if pt.reuse {
			out = append(out, pt)
		}
	}
	return out
}

// ensureKV makes the position record usable, clearing a context it cannot
// describe (after mtmd chunks).
func (s *Session) ensureKV() {
	if !s.kvOK {
		s.reset()
	}
}

// dropImages forgets the stats of images no longer in the context.
func (s *Session) dropImages() {
	if len(s.images) == 0 {
		return
	}
	held := map[string]bool{}
	for _, c := range s.kv {
		if c.img != "" && c.row == 0 {
			held[c.img] = true
		}
	}
	for k := range s.images {
		if !held[k] {
			delete(s.images, k)
		}
	}
}

// Generate produces the answer to the turn Prefill evaluated; once, and
// only while nothing else has gone into the session since.
func (r *Reply) Generate(ctx context.Context) (string, error) {
	s := r.s
	if err := s.lock(); err != nil {
		return "", err
	}
	defer s.mu.Unlock()
	if r.done || r.epoch != s.epoch {
		return "", fmt.Errorf("%w: this reply was already generated, or the session has moved on since its Prefill", ErrOptions)
	}
	r.done = true
	st := &r.Stats
	answer, err := s.generate(ctx, r)
	s.history = append(s.history, bridge.ChatMessage{Role: "assistant", Content: answer})
	s.rendered += answer
	s.lastEOG = st.StopReason == StopEOG
	if s.lastEOG {
		s.rendered += r.eogText
	}
	st.KVCells = s.cells()
	s.epoch++
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

func (s *Session) evalParts(ctx context.Context, parts []part, st *Stats) error {
	w := s.p.model.NEmbd()
	for i, pt := range parts {
		if pt.reuse {
			continue
		}
		last := i == len(parts)-1
		if pt.pr != nil {
			rows := pt.pr.Embd
			n := len(rows) / w
			key := pt.key
			if key == "" {
				key = fmt.Sprintf("anonymous:%p", pt.pr) // never matched by Sync
			}
			if s.p.mrope {
				if err := s.evalMRoPE(ctx, pt.pr, key, last); err != nil {
					return fmt.Errorf("image: %w", err)
				}
				s.images[key] = pt.pr.stats()
				st.ImageTokens += n
				continue
			}
			if err := s.decodeBatches(ctx, n, func(off, k int, logits bool) error {
				var err error
				if s.p.nonCausal {
					// No logits: <end_of_image> always follows.
					err = s.lctx.DecodeEmbeddingsNonCausal(rows[off*w:(off+k)*w], s.nPast)
				} else {
					err = s.lctx.DecodeEmbeddings(rows[off*w:(off+k)*w], s.nPast, last && logits)
				}
				if err != nil {
					return err
				}
				for r := off; r < off+k; r++ {
					s.record(cell{img: key, row: int32(r)})
				}
				return nil
			}); err != nil {
				return fmt.Errorf("image: %w", err)
			}
			is := pt.pr.stats()
			s.images[key] = is
			st.ImageTokens += n
			continue
		}
		t := pt.toks
		if err := s.decodeBatches(ctx, len(t), func(off, k int, logits bool) error {
			if err := s.lctx.DecodeTokens(t[off:off+k], s.nPast, last && logits); err != nil {
				return err
			}
			for _, tok := range t[off : off+k] {
				s.record(cell{tok: tok})
			}
			return nil
		}); err != nil {
			return fmt.Errorf("prompt: %w", err)
		}
		st.TextTokens += len(t)
	}
	return nil
}

// record notes what the next position holds.
func (s *Session) record(c cell) {
	if s.kvOK {
		s.kv = append(s.kv, c)
	}
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

func (s *Session) generate(ctx context.Context, r *Reply) (string, error) {
	t, st := r.t, &r.Stats
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
	st.StopReason = StopLimit
	var lastAt time.Time
	for i := 0; t.Gen.MaxTokens < 0 || i < t.Gen.MaxTokens; i++ {
		if err := ctx.Err(); err != nil {
			_ = emit(nil, true)
			st.StopReason = StopCancelled
			return out.String(), err
		}
		tok := smp.Sample(s.lctx)
		lastAt = time.Now()
		if i == 0 {
			firstAt = lastAt
			st.TTFT = firstAt.Sub(r.start)
		}
		if m.IsEOG(tok) {
			st.StopReason = StopEOG
			r.eogText = m.TokenText(tok)
			// Keep the end-of-turn token in the cache so the next turn's
			// template text follows a complete assistant message (a full
			// context just leaves it out).
			if err := s.p.compute(ctx, func() error { return s.lctx.DecodeTokens([]int32{tok}, s.nPast, false) }); err == nil {
				s.nPast++
				s.record(cell{tok: tok})
			}
			break
		}
		st.DecodeTokens++
		if err := emit(m.TokenPiece(tok), false); err != nil {
			st.StopReason = StopCancelled
			return out.String(), err
		}
		// Positions and cells differ once M-RoPE images are in: the
		// context is full when either is.
		if s.nPast >= s.lctx.NCtx() || s.cells() >= s.lctx.NCtx() {
			st.StopReason = StopContext
			break
		}
		if err := s.p.compute(ctx, func() error { return s.lctx.DecodeTokens([]int32{tok}, s.nPast, true) }); err != nil {
			if errors.Is(err, ErrContextFull) {
				st.StopReason = StopContext
				break
			}
			if ctx.Err() != nil {
				st.StopReason = StopCancelled
			}
			return out.String(), err
		}
		s.nPast++
		s.record(cell{tok: tok})
	}
	// Decode speed counts sampled tokens after the first, up to the last
	// sample: the trailing decode (which keeps the answer in the cache for
	// the next turn) produces no token.
	st.Decode = lastAt.Sub(firstAt)
	if err := emit(nil, true); err != nil {
		st.StopReason = StopCancelled
		return out.String(), err
	}
	return out.String(), nil
}
