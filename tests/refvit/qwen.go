package refvit

import (
	"fmt"
	"math"

	"github.com/hiprune/hiprune-go/internal/gguf"
)

// QwenModel is a Qwen2.5-VL mmproj (projector qwen2.5vl_merger) as float64,
// for a plain forward pass written from the model's definition rather than
// from llama.cpp's graph: tokens stay in raster order of the patches (no
// window permutation), window attention is a same-window test per pair of
// patches, and the rotary angles are computed from each patch's row and
// column directly.
type QwenModel struct {
	Patch, E, H, FF, NBlock, Proj, Hidden int
	// WAPattern: blocks WAPattern, 2*WAPattern, ... (1-based) attend over
	// the whole image; Window is the window side in pixels.
	WAPattern, Window int
	Eps               float64
	Act               string

	patchF16                 bool
	patch0, patch1           []float64
	preW, preB, postW, postB []float64
	mm0w, mm0b, mm2w, mm2b   []float64
	blocks                   []block
	gatew, gateb             [][]float64
	merge                    int
}

// QwenOutput is one forward pass.
type QwenOutput struct {
	GridW, GridH   int         // merged tokens
	PatchW, PatchH int         // patches
	Embd           [][]float64 // per token (raster order), Proj wide
	Object, Deep   []float64   // per patch (raster order): mean attention received
}

// LoadQwen reads an F32/F16 Qwen2.5-VL mmproj GGUF.
func LoadQwen(path string) (*QwenModel, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("refvit: %w", err)
	}
	defer f.Close()
	l := newLoader(f)
	if kv, _ := f.Get("clip.projector_type"); kv.Value != "qwen2.5vl_merger" {
		return nil, fmt.Errorf("refvit: %s is not a qwen2.5vl_merger mmproj", path)
	}
	m := &QwenModel{
		Patch:     l.u32("clip.vision.patch_size", 0),
		E:         l.u32("clip.vision.embedding_length", 0),
		H:         l.u32("clip.vision.attention.head_count", 0),
		NBlock:    l.u32("clip.vision.block_count", 0),
		WAPattern: l.u32("clip.vision.n_wa_pattern", 0),
		Window:    l.u32("clip.vision.window_size", 112),
		Eps:       l.eps(),
		Act:       l.act(),
		merge:     l.u32("clip.vision.spatial_merge_size", 2),
	}
	if m.Patch == 0 || m.E == 0 || m.H == 0 || m.NBlock == 0 {
		return nil, fmt.Errorf("refvit: %s lacks vision hyper-parameters", path)
	}
	m.patchF16 = l.f16("v.patch_embd.weight")
	m.patch0, m.patch1 = l.get("v.patch_embd.weight", true), l.get("v.patch_embd.weight.1", true)
	m.preW, m.preB = l.get("v.pre_ln.weight", false), l.get("v.pre_ln.bias", false)
	m.postW, m.postB = l.get("v.post_ln.weight", false), l.get("v.post_ln.bias", false)
	m.mm0w, m.mm0b = l.get("mm.0.weight", true), l.get("mm.0.bias", true)
	m.mm2w, m.mm2b = l.get("mm.2.weight", true), l.get("mm.2.bias", true)
	m.Hidden, m.Proj = int(l.tensors["mm.0.weight"].Ne[1]), int(l.tensors["mm.2.weight"].Ne[1])
	for il := 0; il < m.NBlock; il++ {
		n := func(s string) string { return fmt.Sprintf("v.blk.%d.%s", il, s) }
		b := l.attnBlock(il)
		b.upw, b.upb = l.get(n("ffn_up.weight"), true), l.get(n("ffn_up.bias"), false)
		b.downw, b.downb = l.get(n("ffn_down.weight"), true), l.get(n("ffn_down.bias"), false)
		m.blocks = append(m.blocks, b)
		m.gatew = append(m.gatew, l.get(n("ffn_gate.weight"), true))
		m.gateb = append(m.gateb, l.get(n("ffn_gate.bias"), false))
		if il == 0 {
			m.FF = int(l.tensors[n("ffn_gate.weight")].Ne[1])
		}
	}
	if err := l.err("refvit: " + path + ": "); err != nil {
		return nil, err
	}
	return m, nil
}

// Forward runs the tower on a preprocessed interleaved-RGB nx x ny image
// (sides multiples of 2 * Patch). The object scores are block
// objectLayer's (1-based) attention and the deep scores the last block's,
// each patch's column mean over heads and every query row, with a window
// block's attention masked to the windows, as the block computes it.
func (m *QwenModel) Forward(img []float32, nx, ny, objectLayer int) (*QwenOutput, error) {
	P, E, k := m.Patch, m.E, m.merge
	if nx%(P*k) != 0 || ny%(P*k) != 0 || nx < 1 || ny < 1 || len(img) != nx*ny*3 {
		return nil, fmt.Errorf("refvit: image %dx%d (%d floats) is not made of %d px groups", nx, ny, len(img), P*k)
	}
	if objectLayer < 1 || objectLayer > m.NBlock {
		return nil, fmt.Errorf("refvit: object layer %d outside 1..%d", objectLayer, m.NBlock)
	}
	pw, ph := nx/P, ny/P
	n := pw * ph
	// Patch embedding: both kernels on the same frame, summed.
	x := make([][]float64, n)
	for py := 0; py < ph; py++ {
		for px := 0; px < pw; px++ {
			v := make([]float64, E)
			for e := 0; e < E; e++ {
				s := 0.0
				for c := 0; c < 3; c++ {
					for ky := 0; ky < P; ky++ {
						for kx := 0; kx < P; kx++ {
							w := m.patch0[((e*3+c)*P+ky)*P+kx] + m.patch1[((e*3+c)*P+ky)*P+kx]
							pix := float64(img[3*((py*P+ky)*nx+px*P+kx)+c])
							if m.patchF16 {
								pix = f16(pix)
							}
							s += w * pix
						}
					}
				}
				v[e] = s
			}
			x[py*pw+px] = v
		}
	}
	if m.preW != nil {
		for t := range x {
			x[t] = rmsNorm(x[t], m.preW, m.preB, m.Eps)
		}
	}
	// A patch's window: its group's coordinates divided by the window side
	// in groups.
	gw := max(m.Window/P/k, 1)
	window := func(t int) int {
		gx, gy := (t%pw)/k, (t/pw)/k
		return (gy/gw)*pw + gx/gw
	}
	D := E / m.H
	scale := 1 / math.Sqrt(float64(D))
	out := &QwenOutput{GridW: pw / k, GridH: ph / k, PatchW: pw, PatchH: ph}
	for il := 0; il < m.NBlock; il++ {
		b := m.blocks[il]
		full := m.WAPattern == 0 || (il+1)%m.WAPattern == 0
		q := make([][]float64, n)
		kk := make([][]float64, n)
		v := make([][]float64, n)
		for t := range x {
			h := rmsNorm(x[t], b.ln1w, b.ln1b, m.Eps)
			q[t] = m.rotate(linear(b.qw, b.qb, h, E), t/pw, t%pw)
			kk[t] = m.rotate(linear(b.kw, b.kb, h, E), t/pw, t%pw)
			v[t] = linear(b.vw, b.vb, h, E)
		}
		attn := make([][][]float64, m.H)
		ctxv := make([][]float64, n)
		for t := range ctxv {
			ctxv[t] = make([]float64, E)
		}
		for hh := 0; hh < m.H; hh++ {
			attn[hh] = make([][]float64, n)
			for i := 0; i < n; i++ {
				row := make([]float64, n)
				mx := math.Inf(-1)
				for j := 0; j < n; j++ {
					if !full && window(i) != window(j) {
						continue
					}
					s := 0.0
					for d := 0; d < D; d++ {
						s += q[i][hh*D+d] * kk[j][hh*D+d]
					}
					row[j] = s * scale
					mx = math.Max(mx, row[j])
				}
				sum := 0.0
				for j := range row {
					if !full && window(i) != window(j) {
						row[j] = 0
						continue
					}
					row[j] = math.Exp(row[j] - mx)
					sum += row[j]
				}
				for j := range row {
					row[j] /= sum
				}
				attn[hh][i] = row
				for d := 0; d < D; d++ {
					s := 0.0
					for j := 0; j < n; j++ {
						s += row[j] * v[j][hh*D+d]
					}
					ctxv[i][hh*D+d] = s
				}
			}
		}
		if il == objectLayer-1 {
			out.Object = ColumnMeans(attn)
		}
		if il == m.NBlock-1 {
			out.Deep = ColumnMeans(attn)
		}
		for t := range x {
			o := linear(b.ow, b.ob, ctxv[t], E)
			for e := range o {
				x[t][e] += o[e]
			}
			hn := rmsNorm(x[t], b.ln2w, b.ln2b, m.Eps)
			g := linear(m.gatew[il], m.gateb[il], hn, m.FF)
			u := linear(b.upw, b.upb, hn, m.FF)
			for i := range u {
				u[i] *= act(m.Act, g[i])
			}
			dn := linear(b.downw, b.downb, u, E)
			for e := range dn {
				x[t][e] += dn[e]
			}
		}
	}
	if m.postW != nil {
		for t := range x {
			x[t] = rmsNorm(x[t], m.postW, m.postB, m.Eps)
		}
	}
	// Merger: each group's patches, row by row, concatenated.
	for gy := 0; gy < ph/k; gy++ {
		for gx := 0; gx < pw/k; gx++ {
			cat := make([]float64, 0, E*k*k)
			for dy := 0; dy < k; dy++ {
				for dx := 0; dx < k; dx++ {
					cat = append(cat, x[(gy*k+dy)*pw+gx*k+dx]...)
				}
			}
			hdn := linear(m.mm0w, m.mm0b, cat, m.Hidden)
			for i := range hdn {
				hdn[i] = act("gelu", hdn[i])
			}
			out.Embd = append(out.Embd, linear(m.mm2w, m.mm2b, hdn, m.Proj))
		}
	}
	return out, nil
}

// rotate applies Qwen2.5-VL's 2-D rotary embedding to every head of v: in
// a head of D values, pair (i, i+D/2) turns by row * base^(-4i/D) for
// i < D/4 and by col * base^(-4(i-D/4)/D) for D/4 <= i < D/2 (HF's
// rotary_pos_emb of dim D/2: the row frequencies, then the column ones,
// with rotate_half).
func (m *QwenModel) rotate(v []float64, row, col int) []float64 {
	D := m.E / m.H
	out := make([]float64, len(v))
	for h := 0; h < m.H; h++ {
		x := v[h*D : (h+1)*D]
		o := out[h*D : (h+1)*D]
		for i := 0; i < D/2; i++ {
			var angle float64
			if i < D/4 {
				angle = float64(row) * math.Pow(10000, -4*float64(i)/float64(D))
			} else {
				angle = float64(col) * math.Pow(10000, -4*float64(i-D/4)/float64(D))
			}
			c, s := math.Cos(angle), math.Sin(angle)
			o[i] = x[i]*c - x[i+D/2]*s
			o[i+D/2] = x[i]*s + x[i+D/2]*c
		}
	}
	return out
}

func rmsNorm(x, w, b []float64, eps float64) []float64 {
	ss := 0.0
	for _, v := range x {
		ss += v * v
	}
	inv := 1 / math.Sqrt(ss/float64(len(x))+eps)
	out := make([]float64, len(x))
	for i, v := range x {
		y := v * inv
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
