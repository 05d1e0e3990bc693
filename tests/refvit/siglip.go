package refvit

import (
	"fmt"
	"math"

	"github.com/hiprune/hiprune-go/internal/gguf"
)

// SigLIPModel is a Gemma 3 mmproj (projector gemma3) as float64, for a
// plain forward pass written from the model's definition (Hugging Face's
// SiglipVisionTransformer and Gemma3MultiModalProjector) rather than from
// llama.cpp's graph: patches in raster order with one learned position
// each and no class token, pre-LN blocks, a post-LN, then the patch grid
// averaged over Merge x Merge squares, RMS-normalised and projected.
//
// As stored by llama.cpp's converter: mm.soft_emb_norm.weight already holds
// Gemma's (1 + weight) multiplier, and mm.input_projection.weight is HF's
// [n_embd][LM width] matrix (ne = [LM width, n_embd]).
type SigLIPModel struct {
	HParams
	Proj, Merge int

	patchF16, projF16   bool
	patchW, patchB, pos []float64
	postW, postB        []float64
	softNorm, proj      []float64
	blocks              []block
}

// SigLIPOutput is one forward pass.
type SigLIPOutput struct {
	GridW, GridH   int         // pooled tokens
	PatchW, PatchH int         // patches
	Embd           [][]float64 // per token (raster order), Proj wide
	Object, Deep   []float64   // per patch (raster order): mean attention received
}

// LoadSigLIP reads an F32/F16 gemma3 mmproj GGUF.
func LoadSigLIP(path string) (*SigLIPModel, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("refvit: %w", err)
	}
	defer f.Close()
	l := newLoader(f)
	if kv, _ := f.Get("clip.projector_type"); kv.Value != "gemma3" {
		return nil, fmt.Errorf("refvit: %s is not a gemma3 mmproj", path)
	}
	m := &SigLIPModel{HParams: l.hparams(), Merge: l.u32("clip.vision.projector.scale_factor", 4)}
	if m.ImageSize == 0 || m.Patch == 0 || m.E == 0 || m.H == 0 || m.NBlock == 0 || m.Merge == 0 ||
		(m.ImageSize/m.Patch)%m.Merge != 0 {
		return nil, fmt.Errorf("refvit: %s lacks consistent SigLIP hyper-parameters", path)
	}
	m.patchF16 = l.f16("v.patch_embd.weight")
	m.projF16 = l.f16("mm.input_projection.weight")
	m.patchW, m.patchB = l.get("v.patch_embd.weight", true), l.get("v.patch_embd.bias", false)
	m.pos = l.get("v.position_embd.weight", true)
	m.postW, m.postB = l.get("v.post_ln.weight", false), l.get("v.post_ln.bias", false)
	m.softNorm, m.proj = l.get("mm.soft_emb_norm.weight", true), l.get("mm.input_projection.weight", true)
	m.Proj = int(l.tensors["mm.input_projection.weight"].Ne[0])
	for il := 0; il < m.NBlock; il++ {
		b := l.attnBlock(il)
		l.clipMLP(&b, il, m.E)
		m.blocks = append(m.blocks, b)
	}
	if err := l.err("refvit: " + path + ": "); err != nil {
		return nil, err
	}
	return m, nil
}

// Forward runs the tower and projector on a preprocessed interleaved-RGB
// image (ImageSize^2*3 floats). The deep scores are the last block's
// attention, the object scores block objectLayer's (1-based); both are the
// attention each patch receives, averaged over heads and every patch query.
func (m *SigLIPModel) Forward(img []float32, objectLayer int) (*SigLIPOutput, error) {
	S, P, E := m.ImageSize, m.Patch, m.E
	if len(img) != S*S*3 {
		return nil, fmt.Errorf("refvit: image has %d floats, want %d", len(img), S*S*3)
	}
	if objectLayer < 1 || objectLayer > m.NBlock {
		return nil, fmt.Errorf("refvit: object layer %d outside 1..%d", objectLayer, m.NBlock)
	}
	G := S / P
	n := G * G
	x := make([][]float64, n)
	for py := 0; py < G; py++ {
		for px := 0; px < G; px++ {
			t := py*G + px
			v := make([]float64, E)
			for e := 0; e < E; e++ {
				s := 0.0
				for c := 0; c < 3; c++ {
					for ky := 0; ky < P; ky++ {
						for kx := 0; kx < P; kx++ {
							p := float64(img[3*((py*P+ky)*S+px*P+kx)+c])
							if m.patchF16 {
								p = f16(p) // ggml's im2col lowers into the kernel's type
							}
							s += m.patchW[((e*3+c)*P+ky)*P+kx] * p
						}
					}
				}
				if m.patchB != nil {
					s += m.patchB[e]
				}
				v[e] = s + m.pos[t*E+e]
			}
			x[t] = v
		}
	}
	out := &SigLIPOutput{PatchW: G, PatchH: G, GridW: G / m.Merge, GridH: G / m.Merge}
	D := E / m.H
	scale := 1 / math.Sqrt(float64(D))
	row := make([]float64, n)
	for il, b := range m.blocks {
		q := make([]float64, n*E)
		k := make([]float64, n*E)
		v := make([]float64, n*E)
		for t := range x {
			h := norm(x[t], b.ln1w, b.ln1b, m.Eps)
			copy(q[t*E:], linear(b.qw, b.qb, h, E))
			copy(k[t*E:], linear(b.kw, b.kb, h, E))
			copy(v[t*E:], linear(b.vw, b.vb, h, E))
		}
		ctxv := make([]float64, n*E)
		recv := make([]float64, n) // attention received, summed over heads and queries
		for hh := 0; hh < m.H; hh++ {
			for i := 0; i < n; i++ {
				qi := q[i*E+hh*D : i*E+hh*D+D]
				mx := math.Inf(-1)
				for j := 0; j < n; j++ {
					kj := k[j*E+hh*D : j*E+hh*D+D]
					s := 0.0
					for d := range qi {
						s += qi[d] * kj[d]
					}
					row[j] = s * scale
					mx = math.Max(mx, row[j])
				}
				sum := 0.0
				for j := range row {
					row[j] = math.Exp(row[j] - mx)
					sum += row[j]
				}
				ci := ctxv[i*E+hh*D : i*E+hh*D+D]
				for j, p := range row {
					p /= sum
					recv[j] += p
					vj := v[j*E+hh*D : j*E+hh*D+D]
					for d := range ci {
						ci[d] += p * vj[d]
					}
				}
			}
		}
		for j := range recv {
			recv[j] /= float64(n * m.H)
		}
		if il == objectLayer-1 {
			out.Object = append([]float64(nil), recv...)
		}
		if il == m.NBlock-1 {
			out.Deep = recv
		}
		for t := range x {
			o := linear(b.ow, b.ob, ctxv[t*E:(t+1)*E], E)
			for e := range o {
				x[t][e] += o[e]
			}
			u := linear(b.upw, b.upb, norm(x[t], b.ln2w, b.ln2b, m.Eps), m.FF)
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
	// Average pooling, RMSNorm, projection, token by token.
	K := m.Merge
	for ty := 0; ty < out.GridH; ty++ {
		for tx := 0; tx < out.GridW; tx++ {
			avg := make([]float64, E)
			for dy := 0; dy < K; dy++ {
				for dx := 0; dx < K; dx++ {
					for e, val := range x[(ty*K+dy)*G+tx*K+dx] {
						avg[e] += val
					}
				}
			}
			ms := 0.0
			for e := range avg {
				avg[e] /= float64(K * K)
				ms += avg[e] * avg[e]
			}
			inv := 1 / math.Sqrt(ms/float64(E)+m.Eps)
			for e := range avg {
				avg[e] *= inv * m.softNorm[e]
				if m.projF16 {
					avg[e] = f16(avg[e]) // ggml multiplies an F16 weight by F16 activations
				}
			}
			y := make([]float64, m.Proj)
			for e, a := range avg {
				w := m.proj[e*m.Proj : (e+1)*m.Proj]
				for o := range y {
					y[o] += a * w[o]
				}
			}
			out.Embd = append(out.Embd, y)
		}
	}
	return out, nil
}
