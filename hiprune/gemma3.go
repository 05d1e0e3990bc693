package hiprune

// Gemma 3 defaults. The authors did not evaluate Gemma 3; its encoder is
// SigLIP-So400m (27 blocks, no class token) at 896 px, whose 64x64 patches
// llama.cpp average-pools 4x4 into 256 image tokens.
const (
	// DefaultObjectLayerSigLIP is the object layer (1-based block) for
	// SigLIP-So400m. Source: the paper's layer-wise study of SigLIP
	// (arXiv 2508.00553, Figure 2, "attention map for different layers of
	// SigLIP and CLIP ... the middle layer is more object-centric"), made by
	// the authors' notebook visualizations/attention_score.ipynb
	// (Danielement321/HiPrune) on google/siglip-so400m-patch14-384: it plots
	// layer indices [0, 12, 25], titled "Layer 1", "Layer 13", "Layer 26",
	// and Layer 13 is the object-centric one. The fallback rule (CLIP-L's
	// object layer at its relative depth, 9 of 24 -> 10 of 27) was not
	// needed. Caveat: the same figure shows CLIP-L's Layer 12 while the
	// authors run CLIP-L with layer 9, so the figure's layer is the one they
	// illustrate, not one they tuned; random test weights cannot settle it,
	// so nothing here was tuned either. --object-layer overrides it.
	DefaultObjectLayerSigLIP = 13
	// Gemma3Merge is the side of the patch squares one Gemma 3 token
	// pools (clip.cpp's default scale factor).
	Gemma3Merge = 4
	// DefaultRetentionGemma3 keeps a third of the tokens by default: 85 of
	// 256 (RetainBudget).
	DefaultRetentionGemma3 = 1.0 / 3
)

// Gemma3Budgets returns the budgets N' benchmarked on Gemma 3's 256 tokens,
// largest first: the default third, then 64 and 32.
func Gemma3Budgets() []int { return []int{85, 64, 32} }
