package llava

import (
	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/hiprune"
)

// What a caller of this package needs from the layers below, so that it
// never imports bridge or hiprune itself.

// Defaults: the one source of them for the library and the chat command.
const (
	DefaultAlpha       = hiprune.DefaultAlpha       // HiPrune's anchor fraction
	DefaultObjectLayer = hiprune.DefaultObjectLayer // CLIP-L's object layer (1-based)
	DefaultNCtx        = 4096                       // SessionConfig.NCtx 0 (capped at the model's training length)
	DefaultNBatch      = 512                        // SessionConfig.NBatch 0
)

// Layout is the encoder's token order and depth (Config.Layout).
type Layout = bridge.Layout

const (
	// LayoutCLSFirst is CLIP's own order, class token first, with the
	// depth LLaVA selects: what the models were trained with (the default).
	LayoutCLSFirst = bridge.LayoutCLSFirst
	// LayoutLlamaCpp reproduces the pinned llama.cpp's clip bit for bit,
	// its token order and one block short included (with
	// Config.EncoderFlashAttn FlashAttnOn on the CPU, as clip runs it).
	LayoutLlamaCpp = bridge.LayoutLlamaCpp
)

// FlashAttn chooses flash attention: llama.cpp's in the LM
// (SessionConfig.FlashAttn), ours in the vision encoder
// (Config.EncoderFlashAttn).
type FlashAttn = bridge.FlashAttn

const (
	FlashAttnAuto = bridge.FlashAttnAuto // llama.cpp decides; in the encoder, see Config.EncoderFlashAttn
	FlashAttnOn   = bridge.FlashAttnOn
	FlashAttnOff  = bridge.FlashAttnOff
)

// ParseFlashAttn reads a flash-attention setting as llama.cpp's -fa
// spells it: "auto", "on" or "off".
func ParseFlashAttn(s string) (FlashAttn, error) {
	if f, ok := bridge.ParseFlashAttn(s); ok {
		return f, nil
	}
	return 0, &OptionError{"encoder-flash-attn", s, "want auto, on or off"}
}

// ErrContextFull means a message or an answer does not fit the session's
// context: Reset the session or open one with a larger SessionConfig.NCtx.
var ErrContextFull = bridge.ErrContextFull

// SetVerbose shows (true) or hides llama.cpp's and ggml's own logs.
func SetVerbose(v bool) { bridge.SetVerbose(v) }
