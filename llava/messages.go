package llava

import (
	"context"
	"fmt"
	"strings"

	"github.com/hiprune/hiprune-go/bridge"
)

// Roles of a conversation's messages.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Message is one earlier message of a conversation, for Session.Append.
type Message struct {
	Role string // RoleSystem, RoleUser or RoleAssistant
	// Text holds ImageMarker where each image goes; without markers the
	// images come first, one per line (as in Turn).
	Text   string
	Images []*Image // user messages only
}

// Append evaluates earlier messages of a conversation into the context
// without generating, after what it holds. Assistant messages are taken
// as they are, not regenerated. On error the session is left as it was.
// The returned Stats cover what was evaluated (images, text and image
// tokens, prefill time); nothing is generated.
func (s *Session) Append(ctx context.Context, msgs []Message, o Options) (*Stats, error) {
	imgs, err := checkMessages(msgs)
	if err != nil {
		return nil, err
	}
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if len(msgs) == 0 {
		return &Stats{}, nil
	}
	r, err := s.prefill(ctx, Turn{Images: imgs, Prune: o, messages: msgs})
	if err != nil {
		return nil, err
	}
	// Whatever the last message was, the text now ends where a user turn
	// may follow without an end-of-sequence token (see formatTurn).
	s.lastEOG = true
	return &r.Stats, nil
}

// Sync makes the context hold exactly msgs, a conversation's messages so
// far (as an OpenAI-style client resends them with every request), ready
// for the next user turn (Prefill or Ask). It keeps the longest prefix of
// what the context already holds, as llama-server's prompt cache does:
// a conversation that grew by a turn evaluates only that turn, and an
// image already in the context is neither encoded nor evaluated again.
// Stats.ReusedTokens says how many tokens were kept. A session whose
// projector runs through mtmd (see Pipeline.Projector) starts afresh. On
// error the session is empty, as after Reset.
func (s *Session) Sync(ctx context.Context, msgs []Message, o Options) (*Stats, error) {
	imgs, err := checkMessages(msgs)
	if err != nil {
		return nil, err
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if s.p.mtmd != nil {
		s.reset()
		if len(msgs) == 0 {
			return &Stats{}, nil
		}
		r, err := s.prefill(ctx, Turn{Images: imgs, Prune: o, messages: msgs})
		if err != nil {
			return nil, err
		}
		s.lastEOG = true
		return &r.Stats, nil
	}
	if len(imgs) > 0 && s.p.enc == nil {
		return nil, fmt.Errorf("%w (give --mmproj)", ErrNoVision)
	}
	// Render the whole conversation from the start; what the context holds
	// is then matched against it token by token.
	s.history, s.rendered, s.lastEOG = nil, "", false
	text, rendered, err := s.formatMessages(msgs)
	if err != nil {
		s.reset()
		return nil, err
	}
	st := &Stats{Prompt: text}
	if err := s.evalPrompt(ctx, text, Turn{Images: imgs, Prune: o}, st, true); err != nil {
		s.reset()
		return nil, err
	}
	s.rendered, s.lastEOG = rendered, true
	s.epoch++
	return st, nil
}

// checkMessages checks roles and image markers and returns the images in
// order.
func checkMessages(msgs []Message) ([]*Image, error) {
	var imgs []*Image
	for i, m := range msgs {
		switch m.Role {
		case RoleSystem, RoleUser, RoleAssistant:
		default:
			return nil, fmt.Errorf("%w: message %d: unknown role %q (want system, user or assistant)", ErrOptions, i, m.Role)
		}
		if len(m.Images) > 0 && m.Role != RoleUser {
			return nil, fmt.Errorf("%w: message %d: a %s message cannot hold images", ErrOptions, i, m.Role)
		}
		if _, err := placeImages(m.Text, len(m.Images)); err != nil {
			return nil, fmt.Errorf("message %d: %w", i, err)
		}
		imgs = append(imgs, m.Images...)
	}
	return imgs, nil
}

// format returns what Prefill adds to the context for t (see formatTurn):
// a user turn with the generation prompt, or Append's messages without it.
func (s *Session) format(t Turn, content string) (add, rendered string, err error) {
	if t.messages == nil {
		return s.formatTurn(content)
	}
	return s.formatMessages(t.messages)
}

// formatMessages renders msgs after what the context holds and records
// them in the history. Without a chat template it writes LLaVA-1.5's
// format: "USER: {text} ASSISTANT: {answer}</s>", a system text first.
func (s *Session) formatMessages(msgs []Message) (add, rendered string, err error) {
	h := len(s.history)
	for _, m := range msgs {
		content, err := placeImages(m.Text, len(m.Images))
		if err != nil {
			s.history = s.history[:h]
			return "", "", err
		}
		s.history = append(s.history, bridge.ChatMessage{Role: m.Role, Content: content})
	}
	if s.template != "" {
		cur, err := bridge.ApplyChatTemplate(s.template, s.history, false)
		if err != nil {
			s.history = s.history[:h]
			return "", "", fmt.Errorf("chat template: %w", err)
		}
		n := commonPrefix(s.rendered, cur)
		if n < len(s.rendered) {
			s.p.log.Warn("chat template re-renders earlier turns; continuing from the common prefix", "prefix", n, "rendered", len(s.rendered))
		}
		return cur[n:], cur, nil
	}
	eos := s.p.model.TokenText(s.p.model.EOS())
	var b strings.Builder
	// An answer generated earlier that stopped short of its end token is
	// closed with one, as formatTurn does.
	needEOS := s.rendered != "" && !s.lastEOG
	for _, hm := range s.history[h:] {
		if needEOS && hm.Role != RoleAssistant {
			b.WriteString(eos)
		}
		needEOS = false
		switch hm.Role {
		case RoleSystem:
			b.WriteString(hm.Content + " ")
		case RoleUser:
			b.WriteString("USER: " + hm.Content + " ")
		case RoleAssistant:
			// After a user turn that already ends in the generation prompt
			// (Prefill without Generate) the answer follows it directly.
			if !strings.HasSuffix(s.rendered+b.String(), "ASSISTANT:") {
				b.WriteString("ASSISTANT:")
			}
			if !strings.HasPrefix(hm.Content, " ") {
				b.WriteString(" ")
			}
			b.WriteString(hm.Content + eos)
		}
	}
	add = b.String()
	return add, s.rendered + add, nil
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
