package llava_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/llava"
	"github.com/hiprune/hiprune-go/tests/fixture"
	"github.com/hiprune/hiprune-go/tests/testmodel"
)

// open1 opens the tiny pair on one thread: on a busy machine ggml's
// spinning threads slow a second one down more than it helps.
func open1(t *testing.T) *llava.Pipeline {
	t.Helper()
	lm, mm := fixture.Pair(t, "tiny")
	p, err := llava.Open(context.Background(), llava.Config{Model: lm, MMProj: mm, Threads: 1})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

// A resent conversation is evaluated as the LLaVA-1.5 format writes it,
// the earlier answer taken as given, then the last question is asked.
func TestAppendLLaVAFormat(t *testing.T) {
	p := open1(t)
	s := session(t, p)
	ctx := context.Background()
	eos := p.Model().TokenText(p.Model().EOS())
	require.NotEmpty(t, eos)

	st, err := s.Append(ctx, []llava.Message{
		{Role: llava.RoleSystem, Text: "Be brief."},
		{Role: llava.RoleUser, Text: "What is it?", Images: []*llava.Image{image(t, p, 1)}},
		{Role: llava.RoleAssistant, Text: "A cat."},
	}, llava.Options{Keep: 16})
	require.NoError(t, err)
	assert.Equal(t, "Be brief. USER: <image>\nWhat is it? ASSISTANT: A cat."+eos, st.Prompt)
	require.Len(t, st.Images, 1)
	assert.Equal(t, 576, st.Images[0].TokensBefore)
	assert.Equal(t, 16, st.Images[0].TokensAfter)
	assert.Equal(t, 16, st.ImageTokens)
	assert.Equal(t, st.TextTokens+16, s.Positions(), "nothing is generated")

	ans, st2, err := s.Ask(ctx, llava.Turn{Text: "And the colour?", Gen: greedy})
	require.NoError(t, err)
	assert.Equal(t, "USER: And the colour? ASSISTANT:", st2.Prompt, "no second end token after the given answer")
	assert.NotEmpty(t, ans)
}

// With a chat template, Append renders the messages without a generation
// prompt and the next turn adds the rest: together, the template's
// rendering of the whole conversation.
func TestAppendChatTemplate(t *testing.T) {
	lmSpec := testmodel.TinyLM()
	lmSpec.ChatTemplate = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
	lm, mm := fixture.Custom(t, "tiny-chatml", lmSpec, testmodel.TinyClip())
	p, err := llava.Open(context.Background(), llava.Config{Model: lm, MMProj: mm, Threads: 1})
	require.NoError(t, err)
	defer p.Close()
	s, err := p.NewSession(llava.SessionConfig{NCtx: 512})
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()

	st, err := s.Append(ctx, []llava.Message{
		{Role: llava.RoleSystem, Text: "Be brief."},
		{Role: llava.RoleUser, Text: "Hi"},
		{Role: llava.RoleAssistant, Text: "Hello."},
	}, llava.Options{})
	require.NoError(t, err)
	_, st2, err := s.Ask(ctx, llava.Turn{Text: "More", Gen: greedy})
	require.NoError(t, err)
	assert.Equal(t, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"+
		"<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nMore<|im_end|>\n<|im_start|>assistant\n", st.Prompt+st2.Prompt)
	assert.True(t, strings.HasPrefix(st2.Prompt, "<|im_start|>user\n"), "the next turn starts after the appended answer: %q", st2.Prompt)
}

func TestAppendErrors(t *testing.T) {
	p := open1(t)
	ctx := context.Background()
	s, err := p.NewSession(llava.SessionConfig{NCtx: 256, Template: "llava"})
	require.NoError(t, err)
	defer s.Close()
	img := image(t, p, 1)

	_, err = s.Append(ctx, []llava.Message{{Role: "tool", Text: "x"}}, llava.Options{})
	require.ErrorIs(t, err, llava.ErrOptions)
	assert.Contains(t, err.Error(), `unknown role "tool"`)
	_, err = s.Append(ctx, []llava.Message{{Role: llava.RoleAssistant, Text: "x", Images: []*llava.Image{img}}}, llava.Options{})
	require.ErrorIs(t, err, llava.ErrOptions)
	assert.Contains(t, err.Error(), "assistant message cannot hold images")
	_, err = s.Append(ctx, []llava.Message{{Role: llava.RoleUser, Text: "<image><image>", Images: []*llava.Image{img}}}, llava.Options{})
	require.ErrorIs(t, err, llava.ErrOptions)

	// Over the context: refused before any work, the session unchanged.
	_, err = s.Append(ctx, []llava.Message{{Role: llava.RoleUser, Text: strings.Repeat("word ", 400)}}, llava.Options{})
	require.ErrorIs(t, err, bridge.ErrContextFull)
	assert.Zero(t, s.Positions())
	_, st, err := s.Ask(ctx, llava.Turn{Text: "Hi", Gen: greedy})
	require.NoError(t, err)
	assert.Equal(t, "USER: Hi ASSISTANT:", st.Prompt, "the refused messages left nothing behind")
}
