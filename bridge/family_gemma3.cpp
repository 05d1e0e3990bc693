// family_gemma3.cpp: Gemma 3's vision tower (projector type "gemma3"), built
// op for op like llama.cpp's clip (tools/mtmd/models/siglip.cpp with
// clip_graph::build_vit, and the PROJECTOR_TYPE_GEMMA3 parts of clip.cpp) so
// the embeddings match, plus the per-patch attention scores of two blocks.
//
// The tower, as llama.cpp runs it:
//  - SigLIP: a fixed image_size square (896 for Gemma 3) cut into patch_size
//    patches (14: a 64x64 grid), a biased patch embedding plus learned
//    positions for the patches (no class token), no pre-LN in Gemma's
//    files (applied when present, as build_vit does);
//  - every stored block (build_vit runs n_layer, 27 for So400m): LayerNorm,
//    biased q/k/v, attention over all patches, output projection, residual,
//    LayerNorm, MLP (GELU by clip.use_gelu; ffn_up/ffn_down swapped back
//    when ffn_down takes the embedding, clip.cpp's is_ffn_swapped), residual;
//    then the post-LN;
//  - the soft-embedding head: the patch grid average-pooled in n_merge x
//    n_merge squares (clip.vision.projector.scale_factor, default 4:
//    64x64 -> 16x16 = 256 tokens, raster order), RMSNorm (the encoder's
//    eps) times mm.soft_emb_norm.weight, then mm.input_projection, stored
//    [LM width, n_embd] and multiplied through its transpose.
//
// HiPrune's scores: SigLIP has no class token, so a patch's score is the
// attention it receives averaged over the heads and over every patch query
// (the rule of the authors' attention-score notebook for SigLIP, whose
// column sums over all query rows differ from our means by the constant
// n). The graph reports them per patch, in raster order; a pooled token's
// score is the mean of its n_merge x n_merge patches, which the caller takes
// (hiprune.MergeScores), as for Qwen2.5-VL's 2x2 groups.
//
// The deep layer is the last block; the object layer is the caller's or
// hiprune's SigLIP default (see default_object_layer). The probed blocks'
// attention is materialised in chunks of query rows (probe_scores), since
// 4,096 patches x 16 heads is 1 GiB at once; the layer output takes the
// same attention path as every other block (flash attention where llama.cpp
// uses it), so probing adds a side branch only.
#include "family_common.h"

#include <cmath>
#include <string>
#include <vector>

namespace hp {

namespace {

// clip.cpp's pooling side for Gemma 3 when the file has no scale factor.
constexpr int kMergeDefault = 4;

// The object layer when nothing else is asked (1-based), for SigLIP-So400m's
// 27 blocks; hiprune.DefaultObjectLayerSigLIP documents the source and must
// say the same (the Go tests check that an opened encoder reports it).
constexpr int kObjectLayer = 13;

struct siglip_block {
    ggml_tensor *q_w = nullptr, *q_b = nullptr, *k_w = nullptr, *k_b = nullptr;
    ggml_tensor *v_w = nullptr, *v_b = nullptr, *o_w = nullptr, *o_b = nullptr;
    ggml_tensor *ln1_w = nullptr, *ln1_b = nullptr, *ln2_w = nullptr, *ln2_b = nullptr;
    ggml_tensor *up_w = nullptr, *up_b = nullptr, *gate_w = nullptr, *gate_b = nullptr;
    ggml_tensor *down_w = nullptr, *down_b = nullptr;
};

class gemma3 final : public vision_family {
public:
    explicit gemma3(const gguf_file & f) : path_(f.path()) {
        image_size_ = read_dim(f, "clip.vision.image_size", 1 << 14);
        patch_size_ = read_dim(f, "clip.vision.patch_size", 1024);
        n_embd_ = read_dim(f, "clip.vision.embedding_length", 1 << 16);
        n_head_ = read_dim(f, "clip.vision.attention.head_count", 1 << 12);
        n_ff_ = read_dim(f, "clip.vision.feed_forward_length", 1 << 18);
        n_layer_ = read_dim(f, "clip.vision.block_count", 1024);
        eps_ = f.get_f32("clip.vision.attention.layer_norm_epsilon");
        if (!(eps_ > 0.0f) || !std::isfinite(eps_)) {
            throw error(HP_ERR_FORMAT, strfmt("%s: clip.vision.attention.layer_norm_epsilon = %g, want a finite value > 0",
                                              path_.c_str(), eps_));
        }
        if (n_embd_ % n_head_ != 0) {
            throw error(HP_ERR_FORMAT, strfmt("%s: clip.vision.embedding_length %d is not divisible by attention.head_count %d",
                                              path_.c_str(), n_embd_, n_head_));
        }
        const bool gelu = f.get_bool("clip.use_gelu", false);
        const bool silu = f.get_bool("clip.use_silu", false);
        if (gelu && silu) {
            throw error(HP_ERR_FORMAT, strfmt("%s: clip.use_gelu and clip.use_silu are both true", path_.c_str()));
        }
        act_ = gelu ? ffn_act::gelu : silu ? ffn_act::silu : ffn_act::gelu_quick;
        read_norm_stats(f, mean_, std_);

        if (image_size_ % patch_size_ != 0) {
            throw error(HP_ERR_FORMAT, strfmt("%s: clip.vision.image_size %d is not a multiple of clip.vision.patch_size %d",
                                              path_.c_str(), image_size_, patch_size_));
        }
        grid_ = image_size_ / patch_size_;
        const uint32_t merge = f.get_u32("clip.vision.projector.scale_factor", kMergeDefault);
        if (merge < 1 || merge > (uint32_t) grid_ || grid_ % merge != 0) {
            throw error(HP_ERR_FORMAT, strfmt("%s: clip.vision.projector.scale_factor %u must divide the %d-patch grid side "
                                              "(clip.vision.image_size %d / patch_size %d)",
                                              path_.c_str(), merge, grid_, image_size_, patch_size_));
        }
        merge_ = (int) merge;
        tokens_side_ = grid_ / merge_;
    }

    void declare(const gguf_file & f, ggml_context * ctx_w, ggml_type mm_type) override {
        auto take = [&](const std::string & name, bool required, std::initializer_list<int64_t> shape, bool matmul) {
            return declare_weight(f, ctx_w, name, required, shape, matmul, mm_type);
        };
        const int64_t E = n_embd_, P = patch_size_, N = (int64_t) grid_ * grid_;
        for (const char * name : {"v.patch_embd.weight", "v.position_embd.weight"}) {
            ggml_tensor * t = f.require(name);
            if (t->type != GGML_TYPE_F32 && t->type != GGML_TYPE_F16) {
                throw error(HP_ERR_UNSUP, strfmt("%s: tensor %s has type %s, want f32 or f16", path_.c_str(), name,
                                                 ggml_type_name(t->type)));
            }
        }
        // What llama.cpp's SigLIP graph would use but Gemma 3 never has:
        // refused by name rather than run untested.
        for (const char * name : {"v.class_embd", "v.patch_embd.weight.1"}) {
            if (f.tensor(name)) {
                throw error(HP_ERR_UNSUP, strfmt("%s: tensor %s: Gemma 3's SigLIP has none", path_.c_str(), name));
            }
        }
        patch_w_ = take("v.patch_embd.weight", true, {P, P, 3, E}, true);
        patch_b_ = take("v.patch_embd.bias", false, {E}, false);
        // One position per patch: clip adds the whole table to the patches.
        // Converters write it F32; an F16 table (which clip's F32 + F16 add
        // would abort on) is widened on load.
        pos_ = take("v.position_embd.weight", true, {E, N}, false);
        pre_w_ = take("v.pre_ln.weight", false, {E}, false);
        pre_b_ = take("v.pre_ln.bias", false, {E}, false);
        post_w_ = take("v.post_ln.weight", false, {E}, false);
        post_b_ = take("v.post_ln.bias", false, {E}, false);

        blocks_.resize(n_layer_);
        for (int il = 0; il < n_layer_; il++) {
            auto name = [&](const char * t, const char * s) { return strfmt("v.blk.%d.%s.%s", il, t, s); };
            for (const char * t : {"attn_qkv", "attn_q_norm", "attn_k_norm", "ls1", "ls2"}) {
                if (f.tensor(name(t, "weight"))) {
                    throw error(HP_ERR_UNSUP, strfmt("%s: tensor %s: Gemma 3's SigLIP has none", path_.c_str(),
                                                     name(t, "weight").c_str()));
                }
            }
            siglip_block & b = blocks_[il];
            b.q_w = take(name("attn_q", "weight"), true, {E, E}, true);
            b.q_b = take(name("attn_q", "bias"), false, {E}, false);
            b.k_w = take(name("attn_k", "weight"), true, {E, E}, true);
            b.k_b = take(name("attn_k", "bias"), false, {E}, false);
            b.v_w = take(name("attn_v", "weight"), true, {E, E}, true);
            b.v_b = take(name("attn_v", "bias"), false, {E}, false);
            b.o_w = take(name("attn_out", "weight"), true, {E, E}, true);
            b.o_b = take(name("attn_out", "bias"), false, {E}, false);
            b.ln1_w = take(name("ln1", "weight"), false, {E}, false);
            b.ln1_b = take(name("ln1", "bias"), false, {E}, false);
            b.ln2_w = take(name("ln2", "weight"), false, {E}, false);
            b.ln2_b = take(name("ln2", "bias"), false, {E}, false);
            // clip.cpp swaps ffn_up and ffn_down back (weights and biases)
            // when ffn_down takes the embedding (is_ffn_swapped), and so do we
            // (the current converter writes fc1 as ffn_up: no swap).
            f.require(name("ffn_up", "weight"));
            const bool swapped = f.require(name("ffn_down", "weight"))->ne[0] == E;
            const char * up = swapped ? "ffn_down" : "ffn_up";
            const char * down = swapped ? "ffn_up" : "ffn_down";
            b.up_w = take(name(up, "weight"), true, {E, n_ff_}, true);
            b.up_b = take(name(up, "bias"), false, {n_ff_}, false);
            b.gate_w = take(name("ffn_gate", "weight"), false, {E, n_ff_}, true);
            b.gate_b = take(name("ffn_gate", "bias"), false, {n_ff_}, false);
            b.down_w = take(name(down, "weight"), true, {n_ff_, E}, true);
            b.down_b = take(name(down, "bias"), false, {E}, false);
        }
        soft_norm_ = take("mm.soft_emb_norm.weight", true, {E}, false);
        ggml_tensor * proj = f.require("mm.input_projection.weight");
        proj_dim_ = (int) proj->ne[0];
        proj_ = take("mm.input_projection.weight", true, {proj_dim_, E}, true);
    }

    void fill_info(hp_encoder_info & info) const override {
        snprintf(info.projector, sizeof(info.projector), "gemma3");
        info.image_size = image_size_;
        info.patch_size = patch_size_;
        info.grid_w = info.grid_h = tokens_side_;
        info.n_patches = tokens_side_ * tokens_side_;
        info.n_embd = n_embd_;
        info.n_head = n_head_;
        info.n_ff = n_ff_;
        info.n_block = info.n_run = n_layer_;
        info.proj_dim = proj_dim_;
        info.has_cls = 0;
        for (int i = 0; i < 3; i++) {
            info.mean[i] = mean_[i];
            info.std[i] = std_[i];
        }
        info.eps = eps_;
        info.n_merge = merge_;
    }

    int n_run() const override { return n_layer_; }
    int default_object_layer() const override { return kObjectLayer; }

    image_dims dims(int nx, int ny) const override {
        if (nx != image_size_ || ny != image_size_) {
            throw error(HP_ERR_ARG, strfmt("image is %dx%d, the encoder takes %dx%d (preprocess it first)", nx, ny, image_size_,
                                           image_size_));
        }
        return image_dims{tokens_side_ * tokens_side_, grid_ * grid_};
    }
    void default_size(int & nx, int & ny) const override { nx = ny = image_size_; }

    size_t max_nodes(const graph_opts & o) const override {
        const int n = grid_ * grid_;
        const int r = probe_chunk_rows(n, n_head_, o.probe_bytes);
        return 128 + (size_t) n_layer_ * 64 + 2 * 16 * (size_t) ((n + r - 1) / r);
    }
    size_t n_weights() const override { return 32 + (size_t) n_layer_ * 24; }

    graph_out build(ggml_context * ctx0, ggml_cgraph * gf, const graph_opts & o) const override {
        const int E = n_embd_, H = n_head_, D = n_embd_ / n_head_;
        const int n = grid_ * grid_;
        const float kq_scale = 1.0f / sqrtf((float) D);

        ggml_tensor * raw = ggml_new_tensor_3d(ctx0, GGML_TYPE_F32, image_size_, image_size_, 3);
        ggml_set_name(raw, "inp_raw");
        ggml_set_input(raw);

        ggml_tensor * x = ggml_conv_2d(ctx0, patch_w_, raw, patch_size_, patch_size_, 0, 0, 1, 1);
        x = ggml_reshape_2d(ctx0, x, n, E);
        x = ggml_cont(ctx0, ggml_transpose(ctx0, x));
        if (patch_b_) x = ggml_add(ctx0, x, patch_b_);
        x = ggml_add(ctx0, x, pos_);
        if (pre_w_) x = norm(ctx0, x, pre_w_, pre_b_);

        graph_out out;
        for (int il = 0; il < n_layer_; il++) {
            const siglip_block & b = blocks_[il];
            const bool probe_obj = il == o.object_block;
            const bool probe_deep = il == n_layer_ - 1;

            ggml_tensor * cur = norm(ctx0, x, b.ln1_w, b.ln1_b);
            ggml_tensor * Q = ggml_reshape_3d(ctx0, lin(ctx0, b.q_w, b.q_b, cur), D, H, n);
            ggml_tensor * K = ggml_reshape_3d(ctx0, lin(ctx0, b.k_w, b.k_b, cur), D, H, n);
            ggml_tensor * V = ggml_reshape_3d(ctx0, lin(ctx0, b.v_w, b.v_b, cur), D, H, n);
            ggml_build_forward_expand(gf, Q);
            ggml_build_forward_expand(gf, K);
            ggml_build_forward_expand(gf, V);
            ggml_tensor * q = ggml_permute(ctx0, Q, 0, 2, 1, 3); // [D, n, H]
            ggml_tensor * k = ggml_permute(ctx0, K, 0, 2, 1, 3);

            if (probe_obj || probe_deep) {
                ggml_tensor * s = probe_scores(ctx0, gf, q, k, nullptr, kq_scale, o.probe_bytes);
                ggml_set_output(s);
                ggml_set_name(s, probe_obj ? "hp_object_scores" : "hp_deep_scores");
                if (probe_obj) out.object = s;
                if (probe_deep) out.deep = s;
                ggml_build_forward_expand(gf, s);
            }

            if (o.flash_attn) {
                ggml_tensor * v = ggml_permute(ctx0, V, 0, 2, 1, 3);
                ggml_tensor * kf = ggml_cast(ctx0, k, GGML_TYPE_F16);
                v = ggml_cast(ctx0, v, GGML_TYPE_F16);
                cur = ggml_flash_attn_ext(ctx0, q, kf, v, nullptr, kq_scale, 0.0f, 0.0f);
                ggml_flash_attn_ext_set_prec(cur, GGML_PREC_F32);
                cur = ggml_reshape_2d(ctx0, cur, cur->ne[0] * cur->ne[1], cur->ne[2] * cur->ne[3]);
            } else {
                ggml_tensor * v = ggml_cont(ctx0, ggml_permute(ctx0, V, 1, 2, 0, 3));
                ggml_tensor * kq = ggml_mul_mat(ctx0, k, q);
                kq = ggml_soft_max_ext(ctx0, kq, nullptr, kq_scale, 0.0f);
                ggml_tensor * kqv = ggml_mul_mat(ctx0, v, kq);
                cur = ggml_permute(ctx0, kqv, 0, 2, 1, 3);
                cur = ggml_cont_2d(ctx0, cur, E, n);
            }
            cur = lin(ctx0, b.o_w, b.o_b, cur);
            x = ggml_add(ctx0, cur, x);

            cur = norm(ctx0, x, b.ln2_w, b.ln2_b);
            cur = ffn(ctx0, b, cur);
            x = ggml_add(ctx0, x, cur);
        }
        if (post_w_) x = norm(ctx0, x, post_w_, post_b_);

        // Soft-embedding head: [E, n] -> [grid, grid, E] -> average pool
        // -> [side*side, E] -> [E, side*side], RMSNorm, projection.
        ggml_tensor * e = ggml_cont_4d(ctx0, ggml_transpose(ctx0, x), grid_, grid_, E, 1);
        e = ggml_pool_2d(ctx0, e, GGML_OP_POOL_AVG, merge_, merge_, merge_, merge_, 0, 0);
        e = ggml_reshape_3d(ctx0, e, (int64_t) tokens_side_ * tokens_side_, E, 1);
        e = ggml_cont(ctx0, ggml_transpose(ctx0, e));
        e = ggml_rms_norm(ctx0, e, eps_);
        e = ggml_mul(ctx0, e, soft_norm_);
        e = ggml_mul_mat(ctx0, ggml_cont(ctx0, ggml_transpose(ctx0, proj_)), e);
        e = ggml_reshape_2d(ctx0, e, proj_dim_, (int64_t) tokens_side_ * tokens_side_);
        ggml_set_name(e, "hp_embd");
        ggml_set_output(e);
        ggml_build_forward_expand(gf, e);
        out.embd = e;
        return out;
    }

    void set_inputs(ggml_cgraph * gf, const float * img, int nx, int ny, const graph_opts &) const override {
        set_planar_image(gf, img, nx, ny);
    }

private:
    ggml_tensor * norm(ggml_context * ctx0, ggml_tensor * x, ggml_tensor * w, ggml_tensor * b) const {
        return hp::norm(ctx0, x, w, b, eps_, false);
    }
    ggml_tensor * ffn(ggml_context * ctx0, const siglip_block & b, ggml_tensor * x) const {
        return hp::ffn(ctx0, x, act_, b.up_w, b.up_b, b.gate_w, b.gate_b, b.down_w, b.down_b);
    }

    std::string path_;
    int image_size_ = 0, patch_size_ = 0, n_embd_ = 0, n_head_ = 0, n_ff_ = 0, n_layer_ = 0;
    int grid_ = 0, merge_ = kMergeDefault, tokens_side_ = 0, proj_dim_ = 0;
    float eps_ = 0;
    float mean_[3] = {0, 0, 0}, std_[3] = {1, 1, 1};
    ffn_act act_ = ffn_act::gelu_quick;

    ggml_tensor *patch_w_ = nullptr, *patch_b_ = nullptr, *pos_ = nullptr;
    ggml_tensor *pre_w_ = nullptr, *pre_b_ = nullptr, *post_w_ = nullptr, *post_b_ = nullptr;
    ggml_tensor *soft_norm_ = nullptr, *proj_ = nullptr;
    std::vector<siglip_block> blocks_;
};

} // namespace

std::unique_ptr<vision_family> make_gemma3(const gguf_file & f) { return std::make_unique<gemma3>(f); }

} // namespace hp
