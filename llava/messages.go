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
// without generating: a client that resends the whole conversation, as
// OpenAI-style chat APIs do, loads every message before the last user one
// with Append and asks that one with Ask (or Prefill and Generate).
// Assistant messages are taken as they are, not regenerated. On error the
// session is left as it was. The returned Stats cover what was evaluated
// (images, text and image tokens, prefill time); nothing is generated.
func (s *Session) Append(ctx context.Context, msgs []Message, o Options) (*Stats, error) {
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
	if len(msgs) == 0 {
		return &Stats{}, nil
	}
	st, err := s.Prefill(ctx, Turn{Images: imgs, Prune: o, messages: msgs})
	if err != nil {
		return nil, err
	}
	// Whatever the last message was, the text now ends where a user turn
	// may follow without an end-of-sequence token (see formatTurn).
	s.mu.Lock()
	s.lastEOG = true
	s.mu.Unlock()
	return st, nil
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
