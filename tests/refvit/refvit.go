// Package refvit is a deliberately plain Go forward pass of a LLaVA-1.5
// mmproj (CLIP ViT + MLP projector) that materialises every attention
// matrix. It is the independent reference the bridge encoder's attention
// scores and embeddings are checked against on tiny generated models; it is
// slow by design and not used outside tests.
//
// It computes in float64 and mirrors the few places where ggml's CPU kernels
// round on purpose (the GELU lookup tables go through float16), so the
// remaining differences are float32 accumulation only.
//
// Its depth is not read from the file: the caller names the hidden state
// the projector reads, with Hugging Face's indexing of the original
// (unconverted) vision tower (see HiddenState), so the reference does not
// share the encoder's rule for mapping a converted file to a depth.
package refvit

import (
	"fmt"
	"math"

	"github.com/x448/float16"

	"github.com/hiprune/hiprune-go/internal/gguf"
)

// Layout mirrors bridge.Layout without importing cgo.
type Layout int

const (
	CLSFirst Layout = 0
	LlamaCpp Layout = 1
)

type block struct {
	qw, qb, kw, kb, vw, vb, ow, ob []float64
	ln1w, ln1b, ln2w, ln2b         []float64
	upw, upb, downw, downb         []float64
}

// LLaVA15SelectLayer is LLaVA-1.5's mm_vision_select_layer: the projector
// reads hidden_states[-2] of the CLIP vision tower.
const LLaVA15SelectLayer = -2

// HiddenState resolves index i into Hugging Face's hidden_states of a vision
// tower with nBlocks blocks, the way transformers builds it: nBlocks+1
// entries, hidden_states[0] the embeddings (after pre-LN) and
// hidden_states[k] the output of block k (1-based); a negative i counts from
// the end as Python does (-1 is the last block's output). The result is the
// number of blocks that produce that hidden state.
func HiddenState(i, nBlocks int) (int, error) {
	k := i
	if i < 0 {
		k = nBlocks + 1 + i
	}
	if k < 0 || k > nBlocks {
		return 0, fmt.Errorf("refvit: hidden_states[%d] does not exist for %d blocks", i, nBlocks)
	}
	return k, nil
}

// Model holds an mmproj's weights as float64 (every stored block).
type Model struct {
	HParams
	Proj, Hidden int
	// patchF16: ggml's conv_2d lowers the image with im2col into the
	// kernel's type, so an F16 patch kernel sees the pixels rounded to F16.
	patchF16                                           bool
	patchW, patchB, cls, pos, preW, preB, postW, postB []float64
	mm0w, mm0b, mm2w, mm2b                             []float64
	blocks                                             []block
}

// Load reads an F32/F16 mmproj GGUF.
func Load(path string) (*Model, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("refvit: %w", err)
	}
	defer f.Close()
	l := newLoader(f)
	m := &Model{HParams: l.hparams()}
	if m.ImageSize == 0 || m.Patch == 0 || m.E == 0 || m.H == 0 || m.NBlock < 2 {
		return nil, fmt.Errorf("refvit: %s lacks CLIP hyper-parameters", path)
	}
	m.patchF16 = l.f16("v.patch_embd.weight")
	m.patchW = l.get("v.patch_embd.weight", true)
	m.patchB = l.get("v.patch_embd.bias", false)
	m.cls = l.get("v.class_embd", false)
	m.pos = l.get("v.position_embd.weight", true)
	m.preW, m.preB = l.get("v.pre_ln.weight", false), l.get("v.pre_ln.bias", false)
	m.postW, m.postB = l.get("v.post_ln.weight", false), l.get("v.post_ln.bias", false)
	m.mm0w, m.mm0b = l.get("mm.0.weight", true), l.get("mm.0.bias", true)
	m.mm2w, m.mm2b = l.get("mm.2.weight", true), l.get("mm.2.bias", true)
	if t, ok := l.tensors["mm.0.weight"]; ok {
		m.Hidden = int(t.Ne[1])
	}
	if t, ok := l.tensors["mm.2.weight"]; ok {
		m.Proj = int(t.Ne[1])
	}
	for il := 0; il < m.NBlock; il++ {
		b := l.attnBlock(il)
		l.clipMLP(&b, il, m.E)
		m.blocks = append(m.blocks, b)
	}
	if err := l.err("refvit: "); err != nil {
		return nil, err
	}
	return m, nil
}

// Output is one forward pass.
type Output struct {
	Embd         [][]float64 // per emitted image token, Proj wide
	Object, Deep []float64   // per emitted token: mean attention received
	// Attn[l] is layer l's softmax attention [head][query][key] for the
	// probed layers (nil for others).
	Attn map[int][][][]float64
}

// Forward runs the model on a preprocessed interleaved-RGB image
// (ImageSize^2*3 floats). hiddenState is the non-negative index into HF's
// hidden_states that the projector reads (HiddenState converts LLaVA's
// negative select layer): blocks 1..hiddenState run, the deep scores are
// block hiddenState's attention (HF's attentions[hiddenState-1]) and the
// embeddings are its output, through post-LN when the file has one (as
// llama.cpp applies it; LLaVA files have none). objectLayer is 1-based.
func (m *Model) Forward(img []float32, layout Layout, objectLayer, hiddenState int) (*Output, error) {
	S, P, E := m.ImageSize, m.Patch, m.E
	if len(img) != S*S*3 {
		return nil, fmt.Errorf("refvit: image has %d floats, want %d", len(img), S*S*3)
	}
	if hiddenState < 1 || hiddenState > m.NBlock {
		return nil, fmt.Errorf("refvit: hidden_states[%d] is not the output of one of the %d stored blocks", hiddenState, m.NBlock)
	}
	nRun := hiddenState
	if objectLayer < 1 || objectLayer > nRun {
		return nil, fmt.Errorf("refvit: object layer %d outside 1..%d", objectLayer, nRun)
	}
	G := S / P
	nP := G * G
	hasCLS := m.cls != nil
	nPos := nP
	if hasCLS {
		nPos++
	}
	// Patch embedding: kernel ne [P(kx), P(ky), 3, E].
	patches := make([][]float64, nP)
	for py := 0; py < G; py++ {
		for px := 0; px < G; px++ {
			v := make([]float64, E)
			for e := 0; e < E; e++ {
				s := 0.0
				for c := 0; c < 3; c++ {
					for ky := 0; ky < P; ky++ {
						for kx := 0; kx < P; kx++ {
							w := m.patchW[((e*3+c)*P+ky)*P+kx]
							px := float64(img[3*((py*P+ky)*S+px*P+kx)+c])
							if m.patchF16 {
								px = f16(px)
							}
							s += w * px
						}
					}
				}
				if m.patchB != nil {
					s += m.patchB[e]
				}
				v[e] = s
			}
			patches[py*G+px] = v
		}
	}
	// Token order and position rows, as the encoder graph builds them.
	x := make([][]float64, 0, nPos)
	if hasCLS && layout == CLSFirst {
		x = append(x, append([]float64(nil), m.cls...))
	}
	x = append(x, patches...)
	if hasCLS && layout == LlamaCpp {
		x = append(x, append([]float64(nil), m.cls...))
	}
	for t := range x {
		for e := 0; e < E; e++ {
			x[t][e] += m.pos[t*E+e]
		}
	}
	if m.preW != nil {
		for t := range x {
			x[t] = norm(x[t], m.preW, m.preB, m.Eps)
		}
	}
	out := &Output{Attn: map[int][][][]float64{}}
	first := 0
	if hasCLS {
		first = 1
	}
	D := E / m.H
	scale := 1 / math.Sqrt(float64(D))
	for il := 0; il < nRun; il++ {
		b := m.blocks[il]
		h := make([][]float64, nPos)
		q := make([][]float64, nPos)
		k := make([][]float64, nPos)
		v := make([][]float64, nPos)
		for t := range x {
			h[t] = norm(x[t], b.ln1w, b.ln1b, m.Eps)
			q[t] = linear(b.qw, b.qb, h[t], E)
			k[t] = linear(b.kw, b.kb, h[t], E)
			v[t] = linear(b.vw, b.vb, h[t], E)
		}
		attn := make([][][]float64, m.H)
		ctxv := make([][]float64, nPos)
		for t := range ctxv {
			ctxv[t] = make([]float64, E)
		}
		for hh := 0; hh < m.H; hh++ {
			attn[hh] = make([][]float64, nPos)
			for i := 0; i < nPos; i++ {
				row := make([]float64, nPos)
				mx := math.Inf(-1)
				for j := 0; j < nPos; j++ {
					s := 0.0
					for d := 0; d < D; d++ {
						s += q[i][hh*D+d] * k[j][hh*D+d]
					}
					row[j] = s * scale
					mx = math.Max(mx, row[j])
				}
				sum := 0.0
				for j := range row {
					row[j] = math.Exp(row[j] - mx)
					sum += row[j]
				}
				for j := range row {
					row[j] /= sum
				}
				attn[hh][i] = row
				for d := 0; d < D; d++ {
					s := 0.0
					for j := 0; j < nPos; j++ {
						s += row[j] * v[j][hh*D+d]
					}
					ctxv[i][hh*D+d] = s
				}
			}
		}
		if il == objectLayer-1 || il == nRun-1 {
			out.Attn[il] = attn
			sc := ColumnMeans(attn)[first : first+nP]
			if il == objectLayer-1 {
				out.Object = sc
			}
			if il == nRun-1 {
				out.Deep = sc
			}
		}
		for t := range x {
			o := linear(b.ow, b.ob, ctxv[t], E)
			for e := range o {
				x[t][e] += o[e]
			}
			hn := norm(x[t], b.ln2w, b.ln2b, m.Eps)
			u := linear(b.upw, b.upb, hn, m.FF)
			for i := range u {
				u[i] = act(m.Act, u[i])
			}
			dn := linear(b.downw, b.downb, u, E)
			for e := range dn {
				x[t][e] += dn[e]
			}
		}
	}
	if m.postW != nil {
		for t := range x {
			x[t] = norm(x[t], m.postW, m.postB, m.Eps)
		}
	}
	for t := first; t < first+nP; t++ {
		hdn := linear(m.mm0w, m.mm0b, x[t], m.Hidden)
		for i := range hdn {
			hdn[i] = act("gelu", hdn[i])
		}
		out.Embd = append(out.Embd, linear(m.mm2w, m.mm2b, hdn, m.Proj))
	}
	return out, nil
}

// ColumnMeans is the HiPrune score definition: for each key j, the mean of
// attn[h][i][j] over heads h and query rows i.
func ColumnMeans(attn [][][]float64) []float64 {
	n := len(attn[0][0])
	out := make([]float64, n)
	cnt := 0
	for _, head := range attn {
		for _, row := range head {
			for j, p := range row {
				out[j] += p
			}
			cnt++
		}
	}
	for j := range out {
		out[j] /= float64(cnt)
	}
	return out
}

func norm(x, w, b []float64, eps float64) []float64 {
	n := float64(len(x))
	mean := 0.0
	for _, v := range x {
		mean += v
	}
	mean /= n
	variance := 0.0
	for _, v := range x {
		variance += (v - mean) * (v - mean)
	}
	variance /= n
	inv := 1 / math.Sqrt(variance+eps)
	out := make([]float64, len(x))
	for i, v := range x {
		y := (v - mean) * inv
		if w != nil {
			y *= w[i]
		}
		if b != nil {
			y += b[i]
		}
		out[i] = y
	}
	return out
}

// linear is ggml_mul_mat(W[in, out], x) + b: y[o] = sum_i W[o*in+i] x[i].
func linear(w, b, x []float64, nOut int) []float64 {
	in := len(x)
	y := make([]float64, nOut)
	for o := 0; o < nOut; o++ {
		s := 0.0
		row := w[o*in : (o+1)*in]
		for i, xv := range x {
			s += row[i] * xv
		}
		if b != nil {
			s += b[o]
		}
		y[o] = s
	}
	return y
}

// act applies an activation as ggml's CPU backend does: GELU and quick
// GELU go through float16 lookup tables (input and output rounded to f16).
func act(kind string, x float64) float64 {
	switch kind {
	case "silu":
		return x / (1 + math.Exp(-x))
	case "gelu":
		if x <= -10 {
			return 0
		}
		if x >= 10 {
			return x
		}
		xh := f16(x)
		const a, s2pi = 0.044715, 0.79788456080286535587989211986876
		return f16(0.5 * xh * (1 + math.Tanh(s2pi*xh*(1+a*xh*xh))))
	default: // gelu_quick
		xh := f16(x)
		return f16(xh * (1 / (1 + math.Exp(-1.702*xh))))
	}
}

func f16(x float64) float64 { return float64(float16.Fromfloat32(float32(x)).Float32()) }
