package llava

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/hiprune/hiprune-go/hiprune"
)

// Method is how image tokens are chosen.
type Method string

const (
	MethodHiPrune Method = "hiprune" // hierarchical attention (the default)
	MethodNone    Method = "none"    // keep every token: llama.cpp's behaviour
	MethodUniform Method = "uniform" // evenly spaced grid tokens (baseline)
	MethodRandom  Method = "random"  // seeded random tokens (baseline)
)

func validMethod(m Method) bool {
	switch m {
	case MethodHiPrune, MethodNone, MethodUniform, MethodRandom:
		return true
	}
	return false
}

// ParseMethod accepts the CLI spellings.
func ParseMethod(s string) (Method, error) {
	switch m := Method(strings.ToLower(strings.TrimSpace(s))); m {
	case MethodHiPrune, MethodNone, MethodUniform, MethodRandom:
		return m, nil
	case "off":
		return MethodNone, nil
	}
	return "", fmt.Errorf("%w: unknown pruning method %q (want hiprune, none, uniform or random)", ErrOptions, s)
}

// DefaultKeepRatio keeps a third of the tokens (192 of LLaVA-1.5's 576),
// the authors' setting that keeps accuracy closest to the unpruned model.
const DefaultKeepRatio = 1.0 / 3.0

// DefaultKeepRatioQwen is the default budget of a Qwen2.5-VL image: the
// authors' retention ratio 0.334 of its merged tokens (they also evaluate
// 0.223 and 0.112).
const DefaultKeepRatioQwen = hiprune.DefaultRetentionQwen

// ErrOptions marks invalid pruning or generation options.
var ErrOptions = errors.New("invalid option")

// OptionError is one option out of its range, as Options.Validate and
// GenOptions.Validate report it. errors.Is(err, ErrOptions) holds.
type OptionError struct {
	Option string // the option's name, spelled as the chat command's flag: "keep-ratio", "temp"
	Value  any    // the value given
	Want   string // what is accepted
}

func (e *OptionError) Error() string {
	return fmt.Sprintf("%v: %s %v: %s", ErrOptions, e.Option, e.Value, e.Want)
}

// Is makes an OptionError match ErrOptions.
func (e *OptionError) Is(target error) bool { return target == ErrOptions }

// Options control pruning. The zero value is HiPrune with the default
// budget, alpha and object layer.
type Options struct {
	Method Method
	// Keep is the budget N' per image as a token count; KeepRatio as a
	// fraction of the image's tokens. At most one is set; with neither,
	// DefaultKeepRatio applies (DefaultKeepRatioNeXT to a LLaVA-NeXT
	// image, whose tokens include its newline tokens: see anyres.go;
	// DefaultKeepRatioQwen to a Qwen2.5-VL image, whose token count follows
	// its size: see qwen.go).
	Keep      int
	KeepRatio float64
	// Alpha is HiPrune's anchor fraction (0 = hiprune.DefaultAlpha).
	Alpha float64
	// ObjectLayer is the 1-based encoder block probed for object attention
	// (0 = the pipeline's default: 9, CLIP-L's object layer; 16 for
	// Qwen2.5-VL's vision tower).
	ObjectLayer int
	// Seed drives MethodRandom.
	Seed uint64
}

func (o Options) method() Method {
	if o.Method == "" {
		return MethodHiPrune
	}
	return o.Method
}

// Validate checks the options without knowing the image.
func (o Options) Validate() error {
	switch {
	case !validMethod(o.method()):
		return &OptionError{"prune", o.Method, "want hiprune, none, uniform or random"}
	case o.Keep < 0:
		return &OptionError{"keep", o.Keep, "must be at least 1"}
	case o.Keep != 0 && o.KeepRatio != 0:
		return &OptionError{"keep", o.Keep, fmt.Sprintf("give keep or keep-ratio (%g), not both", o.KeepRatio)}
	case o.KeepRatio != 0 && !(o.KeepRatio > 0 && o.KeepRatio <= 1):
		return &OptionError{"keep-ratio", o.KeepRatio, "must be in (0, 1]"}
	case math.IsNaN(o.Alpha) || o.Alpha < 0 || o.Alpha > 1:
		return &OptionError{"alpha", o.Alpha, "must be in [0, 1]"}
	case o.ObjectLayer < 0:
		return &OptionError{"object-layer", o.ObjectLayer, "must be at least 1 (0: the default)"}
	}
	return nil
}

// Budget is N' for a LLaVA-1.5 image of n tokens (always in 1..n).
func (o Options) Budget(n int) int { return o.budget(n, DefaultKeepRatio) }

// budget is N' for an image of n tokens when the model's default ratio
// is def (DefaultKeepRatio, or DefaultKeepRatioNeXT for LLaVA-NeXT).
func (o Options) budget(n int, def float64) int {
	if o.method() == MethodNone || n <= 0 {
		return n
	}
	var b int
	switch {
	case o.Keep > 0:
		b = o.Keep
	case o.KeepRatio > 0:
		b = int(math.Round(o.KeepRatio * float64(n)))
	default:
		b = int(math.Round(def * float64(n)))
	}
	return max(1, min(b, n))
}

// budgetQwen is N' for a Qwen2.5-VL image of n merged tokens: a count, or
// a ratio (default DefaultKeepRatioQwen) rounded as the authors' code
// rounds it (hiprune.RetainBudget: half to even, at least 1).
func (o Options) budgetQwen(n int) int {
	if o.method() == MethodNone || n <= 0 {
		return n
	}
	if o.Keep > 0 {
		return min(o.Keep, n)
	}
	r := o.KeepRatio
	if r == 0 {
		r = DefaultKeepRatioQwen
	}
	b, err := hiprune.RetainBudget(n, r)
	if err != nil {
		return n // Validate refuses such a ratio first
	}
	return min(b, n)
}

func (o Options) alpha() float64 {
	if o.Alpha == 0 {
		return hiprune.DefaultAlpha
	}
	return o.Alpha
}

// GenOptions are llama.cpp's usual generation controls.
type GenOptions struct {
	MaxTokens     int     // -n; negative: until end of generation or a full context; 0: nothing
	Temp          float32 // 0: greedy
	TopK          int
	TopP          float32
	MinP          float32
	RepeatPenalty float32
	RepeatLastN   int
	Seed          uint32
}

// DefaultGen mirrors llama.cpp's CLI defaults.
func DefaultGen() GenOptions {
	return GenOptions{MaxTokens: 256, Temp: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05, RepeatPenalty: 1.0, RepeatLastN: 64, Seed: 0xFFFFFFFF}
}

// Validate checks generation options. NaN and infinities are refused: a
// NaN compares false with every bound and would reach the sampler.
func (g GenOptions) Validate() error {
	finite := func(x float32) bool { return !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0) }
	switch {
	case !finite(g.Temp) || g.Temp < 0:
		return &OptionError{"temp", g.Temp, "must be a finite number >= 0"}
	case !(g.TopP >= 0 && g.TopP <= 1):
		return &OptionError{"top-p", g.TopP, "must be in [0, 1]"}
	case !(g.MinP >= 0 && g.MinP <= 1):
		return &OptionError{"min-p", g.MinP, "must be in [0, 1]"}
	case !finite(g.RepeatPenalty) || g.RepeatPenalty < 0:
		return &OptionError{"repeat-penalty", g.RepeatPenalty, "must be a finite number >= 0"}
	case g.RepeatLastN < -1:
		return &OptionError{"repeat-last-n", g.RepeatLastN, "must be >= -1 (-1: the whole context)"}
	}
	return nil
}
