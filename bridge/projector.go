package bridge

import (
	"fmt"
	"slices"

	"github.com/hiprune/hiprune-go/internal/gguf"
)

// ProjectorInfo is what an mmproj's GGUF header says about its vision side.
type ProjectorInfo struct {
	// Type is clip.projector_type as the pinned llama.cpp's clip.cpp
	// resolves it for the vision tower: clip.projector_type, else
	// clip.vision.projector_type, else "mlp" (old LLaVA files have no key).
	Type string
	// Family names the models that use Type ("LLaVA-1.5 / NeXT", "Gemma 3"); ""
	// when the pinned llama.cpp does not know Type.
	Family string
	// Vision is clip.has_vision_encoder.
	Vision bool
}

// Encoder reports whether OpenEncoder (and so HiPrune) runs this projector.
func (pi ProjectorInfo) Encoder() bool { return slices.Contains(EncoderProjectors(), pi.Type) }

// Known reports whether the pinned llama.cpp's clip.cpp knows the type.
func (pi ProjectorInfo) Known() bool { return pi.Family != "" }

// EncoderProjectors lists the projector types the pipeline prunes with the
// instrumented encoder (ProjectorInfo.Encoder; the llava package routes the
// others through mtmd): every type OpenEncoder runs.
func EncoderProjectors() []string { return InstrumentedProjectors() }

// InstrumentedProjectors lists every projector type OpenEncoder runs: the
// families make_family in encoder.cpp builds (its "not supported" message
// lists the same).
func InstrumentedProjectors() []string { return []string{"mlp", "qwen2.5vl_merger", "gemma3"} }

// projectorFamilies maps every projector type name of the pinned llama.cpp
// (PROJECTOR_TYPE_NAMES in tools/mtmd/clip-impl.h, commit ec98e2002) to the
// models that use it. Audio-only types are listed too: clip.cpp knows them,
// and a file holding only one has no vision encoder.
var projectorFamilies = map[string]string{
	"mlp":              "LLaVA-1.5 / NeXT",
	"ldp":              "MobileVLM",
	"ldpv2":            "MobileVLM V2",
	"resampler":        "MiniCPM-V",
	"adapter":          "GLM-Edge-V",
	"qwen2vl_merger":   "Qwen2-VL",
	"qwen2.5vl_merger": "Qwen2.5-VL",
	"qwen3vl_merger":   "Qwen3-VL",
	"gemma3":           "Gemma 3",
	"idefics3":         "SmolVLM / Idefics3",
	"pixtral":          "Pixtral / Mistral Small 3.1",
	"ultravox":         "Ultravox (audio)",
	"internvl":         "InternVL",
	"llama4":           "Llama 4",
	"qwen2a":           "Qwen2-Audio (audio)",
	"glma":             "GLM-ASR (audio)",
	"qwen2.5o":         "Qwen2.5-Omni",
	"voxtral":          "Voxtral (audio)",
	"lfm2":             "LFM2-VL",
	"kimivl":           "Kimi-VL",
	"lightonocr":       "LightOnOCR",
	"cogvlm":           "CogVLM",
	"janus_pro":        "Janus-Pro",
	"glm4v":            "GLM-4V",
}

// ProjectorFamily names the models that use projector type typ; "" when
// the pinned llama.cpp does not know it.
func ProjectorFamily(typ string) string { return projectorFamilies[typ] }

// ReadProjector reads an mmproj's projector type from its GGUF header,
// checking the file first as OpenEncoder does.
func ReadProjector(path string) (ProjectorInfo, error) {
	Init()
	if err := checkProjectorFile(path); err != nil {
		return ProjectorInfo{}, fmt.Errorf("mmproj: %w", err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		return ProjectorInfo{}, fmt.Errorf("mmproj: %s: %w", path, classErr{ErrFormat, err})
	}
	defer f.Close()
	str := func(key string) string {
		kv, _ := f.Get(key)
		s, _ := kv.Value.(string)
		return s
	}
	pi := ProjectorInfo{Type: str("clip.projector_type")}
	if pi.Type == "" {
		pi.Type = str("clip.vision.projector_type")
	}
	if pi.Type == "" {
		pi.Type = "mlp"
	}
	pi.Family = projectorFamilies[pi.Type]
	if kv, ok := f.Get("clip.has_vision_encoder"); ok {
		pi.Vision, _ = kv.Value.(bool)
	}
	return pi, nil
}

// checkMtmdHeader refuses what clip.cpp asserts on instead of reporting
// (its image_mean and image_std reads abort the process when the keys are
// missing, and read three floats from whatever array is there).
func checkMtmdHeader(path string) error {
	f, err := gguf.Open(path)
	if err != nil {
		return fmt.Errorf("mmproj: %s: %w", path, classErr{ErrFormat, err})
	}
	defer f.Close()
	for _, key := range []string{"clip.vision.image_mean", "clip.vision.image_std"} {
		kv, ok := f.Get(key)
		if v, isF32 := kv.Value.([]float32); !ok || !isF32 || len(v) < 3 {
			return fmt.Errorf("mmproj: %s: %s must be an array of 3 float32 (llama.cpp aborts otherwise): %w", path, key, ErrFormat)
		}
	}
	return nil
}
