package testmodel

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/hiprune/hiprune-go/internal/gguf"
	"github.com/stretchr/testify/require"
)

// A plain-Go reference forward pass over the generated files, following the
// llava graph (tools/mtmd/models/llava.cpp) and llama's, to check that the
// random weights keep activations finite and O(1) through deep stacks.

type weights struct {
	t *testing.T
	f *gguf.File
}

func (w weights) get(name string) []float32 {
	v, err := w.f.ReadTensorFloat32(name)
	require.NoError(w.t, err, name)
	return v
}

// linear applies W (ggml ne [in, out]) and an optional bias to each row of x.
func linear(x [][]float32, W, b []float32, in, out int) [][]float32 {
	y := make([][]float32, len(x))
	for r, xr := range x {
		yr := make([]float32, out)
		for o := 0; o < out; o++ {
			wo := W[o*in : (o+1)*in]
			var s float32
			for i, v := range xr {
				s += wo[i] * v
			}
			if b != nil {
				s += b[o]
			}
			yr[o] = s
		}
		y[r] = yr
	}
	return y
}

func layerNorm(x [][]float32, w, b []float32, eps float32) [][]float32 {
	y := make([][]float32, len(x))
	for r, xr := range x {
		var mean, vr float64
		for _, v := range xr {
			mean += float64(v)
		}
		mean /= float64(len(xr))
		for _, v := range xr {
			vr += (float64(v) - mean) * (float64(v) - mean)
		}
		inv := 1 / math.Sqrt(vr/float64(len(xr))+float64(eps))
		yr := make([]float32, len(xr))
		for i, v := range xr {
			yr[i] = float32((float64(v)-mean)*inv)*w[i] + b[i]
		}
		y[r] = yr
	}
	return y
}

func rmsNorm(x [][]float32, w []float32, eps float32) [][]float32 {
	y := make([][]float32, len(x))
	for r, xr := range x {
		var ss float64
		for _, v := range xr {
			ss += float64(v) * float64(v)
		}
		inv := float32(1 / math.Sqrt(ss/float64(len(xr))+float64(eps)))
		yr := make([]float32, len(xr))
		for i, v := range xr {
			yr[i] = v * inv * w[i]
		}
		y[r] = yr
	}
	return y
}

// attention: q [n][H*d], k/v [n][Hkv*d]; causal masks future positions.
func attention(q, k, v [][]float32, nHead, nHeadKV, d int, causal bool) [][]float32 {
	n := len(q)
	out := make([][]float32, n)
	scale := float32(1 / math.Sqrt(float64(d)))
	scores := make([]float64, n)
	for i := 0; i < n; i++ {
		out[i] = make([]float32, nHead*d)
		for h := 0; h < nHead; h++ {
			kh := h / (nHead / nHeadKV)
			qi := q[i][h*d : (h+1)*d]
			m := math.Inf(-1)
			last := n
			if causal {
				last = i + 1
			}
			for j := 0; j < last; j++ {
				kj := k[j][kh*d : (kh+1)*d]
				var s float32
				for c := range qi {
					s += qi[c] * kj[c]
				}
				scores[j] = float64(s * scale)
				m = math.Max(m, scores[j])
			}
			var z float64
			for j := 0; j < last; j++ {
				scores[j] = math.Exp(scores[j] - m)
				z += scores[j]
			}
			o := out[i][h*d : (h+1)*d]
			for j := 0; j < last; j++ {
				p := float32(scores[j] / z)
				vj := v[j][kh*d : (kh+1)*d]
				for c := range o {
					o[c] += p * vj[c]
				}
			}
		}
	}
	return out
}

func add(a, b [][]float32) [][]float32 {
	for r := range a {
		for i := range a[r] {
			a[r][i] += b[r][i]
		}
	}
	return a
}

func apply(x [][]float32, f func(float32) float32) [][]float32 {
	for _, r := range x {
		for i, v := range r {
			r[i] = f(v)
		}
	}
	return x
}

func rms(x [][]float32) float64 {
	var s float64
	var n int
	for _, r := range x {
		for _, v := range r {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return math.Inf(1)
			}
			s += float64(v) * float64(v)
			n++
		}
	}
	return math.Sqrt(s / float64(n))
}

func quickGELU(x float32) float32 { return x / (1 + float32(math.Exp(-1.702*float64(x)))) }
func gelu(x float32) float32 {
	return float32(0.5 * float64(x) * (1 + math.Tanh(0.7978845608*(float64(x)+0.044715*float64(x)*float64(x)*float64(x)))))
}
func silu(x float32) float32 { return x / (1 + float32(math.Exp(-float64(x)))) }

func TestCLIPForwardStaysFinite(t *testing.T) {
	c := TinyClip()
	c.NLayer = 23 // like a LLaVA-1.5 CLIP-L file: 23 stored blocks, all run
	if raceEnabled || testing.Short() {
		c.NLayer = 5
	}
	c.Type = F16
	path := filepath.Join(t.TempDir(), "mmproj.gguf")
	require.NoError(t, WriteMMProj(path, c))
	f, err := gguf.Open(path)
	require.NoError(t, err)
	defer f.Close()
	w := weights{t, f}
	E, P, F := c.NEmbd, c.PatchSize, c.NFF
	side := c.ImageSize / P

	img := SampleImage(c.ImageSize, c.ImageSize, 3)
	pix := func(ch, y, x int) float32 {
		r, g, b, _ := img.At(x, y).RGBA()
		v := [3]uint32{r, g, b}[ch] >> 8
		return (float32(v)/255 - c.Mean[ch]) / c.Std[ch]
	}
	kernel := w.get("v.patch_embd.weight") // ne [P, P, 3, E]
	x := make([][]float32, 0, side*side+1)
	for py := 0; py < side; py++ {
		for px := 0; px < side; px++ {
			tok := make([]float32, E)
			for oc := 0; oc < E; oc++ {
				var s float32
				for ch := 0; ch < 3; ch++ {
					for ky := 0; ky < P; ky++ {
						for kx := 0; kx < P; kx++ {
							s += kernel[kx+P*(ky+P*(ch+3*oc))] * pix(ch, py*P+ky, px*P+kx)
						}
					}
				}
				tok[oc] = s
			}
			x = append(x, tok)
		}
	}
	x = append(x, w.get("v.class_embd")) // ggml_concat(inp, class_embd, 1)
	pos := w.get("v.position_embd.weight")
	for r := range x {
		for i := range x[r] {
			x[r][i] += pos[r*E+i]
		}
	}
	t.Logf("embeddings rms %.3f", rms(x))
	x = layerNorm(x, w.get("v.pre_ln.weight"), w.get("v.pre_ln.bias"), c.LayerNormEps)

	for il := 0; il < c.NLayer; il++ { // every stored block, as hiprune-go's default layout runs them
		p := fmt.Sprintf("v.blk.%d.", il)
		h := layerNorm(x, w.get(p+"ln1.weight"), w.get(p+"ln1.bias"), c.LayerNormEps)
		q := linear(h, w.get(p+"attn_q.weight"), w.get(p+"attn_q.bias"), E, E)
		k := linear(h, w.get(p+"attn_k.weight"), w.get(p+"attn_k.bias"), E, E)
		v := linear(h, w.get(p+"attn_v.weight"), w.get(p+"attn_v.bias"), E, E)
		a := attention(q, k, v, c.NHead, c.NHead, E/c.NHead, false)
		x = add(x, linear(a, w.get(p+"attn_out.weight"), w.get(p+"attn_out.bias"), E, E))
		h = layerNorm(x, w.get(p+"ln2.weight"), w.get(p+"ln2.bias"), c.LayerNormEps)
		// legacy names: ffn_down is fc1 (E->F), ffn_up is fc2 (F->E)
		h = apply(linear(h, w.get(p+"ffn_down.weight"), w.get(p+"ffn_down.bias"), E, F), quickGELU)
		x = add(x, linear(h, w.get(p+"ffn_up.weight"), w.get(p+"ffn_up.bias"), F, E))
		r := rms(x)
		require.Less(t, r, 50.0, "residual stream after block %d", il)
		if il%4 == 0 || il == c.NLayer-1 {
			t.Logf("block %2d: residual rms %.3f", il, r)
		}
	}
	patches := x[:side*side]
	y := apply(linear(patches, w.get("mm.0.weight"), w.get("mm.0.bias"), E, c.ProjDim), gelu)
	y = linear(y, w.get("mm.2.weight"), w.get("mm.2.bias"), c.ProjDim, c.ProjDim)
	r := rms(y)
	t.Logf("projector output rms %.3f", r)
	require.Greater(t, r, 0.05)
	require.Less(t, r, 20.0)
	// features vary across patches (the image has objects)
	var diff float64
	for i := range y[0] {
		diff += math.Abs(float64(y[0][i] - y[len(y)/2][i]))
	}
	require.Greater(t, diff/float64(len(y[0])), 1e-3)
}

func TestLMForwardStaysFinite(t *testing.T) {
	for _, typ := range []gguf.Type{F32, Q4_0} {
		s := TinyLM()
		s.Type = typ
		s.NLayer = 8
		path := filepath.Join(t.TempDir(), "lm.gguf")
		require.NoError(t, WriteLM(path, s))
		f, err := gguf.Open(path)
		require.NoError(t, err)
		w := weights{t, f}
		E, F, V := s.NEmbd, s.NFF, s.NVocab()
		d := E / s.NHead
		kvd := d * s.NHeadKV
		emb := w.get("token_embd.weight")
		ids := []int{BOSID, 300, 301, 1000, 2000, 5000, 42, 77}
		x := make([][]float32, len(ids))
		for i, id := range ids {
			x[i] = append([]float32(nil), emb[id*E:(id+1)*E]...)
		}
		for il := 0; il < s.NLayer; il++ {
			p := fmt.Sprintf("blk.%d.", il)
			h := rmsNorm(x, w.get(p+"attn_norm.weight"), LMRMSEps)
			q := linear(h, w.get(p+"attn_q.weight"), nil, E, E)
			k := linear(h, w.get(p+"attn_k.weight"), nil, E, kvd)
			v := linear(h, w.get(p+"attn_v.weight"), nil, E, kvd)
			a := attention(q, k, v, s.NHead, s.NHeadKV, d, true) // RoPE omitted: it preserves norms
			x = add(x, linear(a, w.get(p+"attn_output.weight"), nil, E, E))
			h = rmsNorm(x, w.get(p+"ffn_norm.weight"), LMRMSEps)
			g := apply(linear(h, w.get(p+"ffn_gate.weight"), nil, E, F), silu)
			u := linear(h, w.get(p+"ffn_up.weight"), nil, E, F)
			for r := range g {
				for i := range g[r] {
					g[r][i] *= u[r][i]
				}
			}
			x = add(x, linear(g, w.get(p+"ffn_down.weight"), nil, F, E))
			require.Less(t, rms(x), 50.0, "%v block %d", typ, il)
		}
		x = rmsNorm(x, w.get("output_norm.weight"), LMRMSEps)
		logits := linear(x, w.get("output.weight"), nil, E, V)
		r := rms(logits)
		t.Logf("%v: final-norm output rms %.3f, logits rms %.3f", typ, rms(x), r)
		require.Greater(t, r, 0.1)
		require.Less(t, r, 10.0)
		f.Close()
	}
}
