// family_qwen25vl.cpp: Qwen2.5-VL's vision tower and patch merger
// (projector type "qwen2.5vl_merger"), built op for op like llama.cpp's
// clip (tools/mtmd/models/qwen2vl.cpp and the PROJECTOR_TYPE_QWEN25VL
// inputs in clip.cpp) so the embeddings match, plus the per-patch
// attention scores of two blocks.
//
// The tower, as llama.cpp runs it:
//  - dynamic resolution: any nx x ny made of 28x28 groups of four 14 px
//    patches; the patch embedding is two 2-D kernels (HF's Conv3d over two
//    identical frames) summed, with no bias and no learned positions;
//  - tokens are ordered group by group (each 2x2 group's patches together,
//    dy-major), then, for window attention, permuted so that every window
//    of 4x4 groups (112 px) is contiguous ("window order"); the merger's
//    output is permuted back to raster order of the groups at the end;
//  - blocks: RMSNorm, q/k/v with biases, 2-D rotary positions (row, column,
//    row, column sections of d_head/4 pairs, ggml's vision M-RoPE),
//    attention within windows except in every n_wa_pattern-th block, output
//    projection, RMSNorm, gated MLP (SiLU by clip.use_silu);
//  - the merger: post-LN (RMSNorm), each group's four patches concatenated,
//    mm.0 -> GELU -> mm.2 to the LM's width.
//
// HiPrune's scores, following the authors' Qwen2.5-VL code
// (mmdbhs/HiPrune-fork, Qwen2_5_VL/qwen2_5_vl_HiPrune.py):
//  - the object layer is block 16 (1-based: attn_list[OBJECT_LAYER - 1]) and
//    the deep layer the last block (attn_list[-1]); for Qwen2.5-VL-3B/7B
//    (fullatt_block_indexes 7, 15, 23, 31) both are full-attention blocks;
//  - a patch's score is the attention it receives, averaged over heads
//    and summed over every query row (we average: a constant factor);
//  - the authors then average the four patches of each 2x2 group, map the
//    groups back from window order to raster order and take a softmax over
//    the groups. Here the per-patch scores leave the graph in raster order
//    of the patches; the group mean is the caller's (hiprune.MergeScores),
//    and the softmax is left out because it preserves the ranking, which is
//    all the selection reads.
//  - window blocks (an object layer the user moves off the default): the
//    authors' two attention branches disagree. Their flash-attention branch
//    recomputes softmax(q k^T / sqrt(d)) over the whole image, an attention
//    the block never computes; their eager branch masks by window, i.e. it
//    reports the block's own attention. We follow the eager branch: the
//    scores are then what the block actually attends to (each query row
//    sums to 1 within its window), the same rule as every full block, and
//    the default layers, which are full blocks, do not depend on the choice.
//
// The probed blocks' attention is materialised in chunks of query rows
// (graph_opts::probe_bytes each, 128 MiB by default), so that a large image's n x n x heads matrix never
// exists at once; the layer's output still takes the same attention path
// as the unprobed blocks (flash attention where llama.cpp uses it).
#include "family_common.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace hp {

namespace {

// The pinned llama.cpp hard-codes both for Qwen2.5-VL (clip.cpp,
// PROJECTOR_TYPE_QWEN25VL inputs).
constexpr int kMerge = 2;
constexpr int kWindow = 112;
// llama.cpp's image limits for the Qwen-VL families, in merged tokens
// (clip_hparams::set_limit_image_tokens(8, 4096)).
constexpr int kMinTokens = 8;
constexpr int kMaxTokens = 4096;
// The largest image the encoder takes, in merged tokens: HF's default
// max_pixels for Qwen2.5-VL (16384 * 28 * 28). The window mask alone is
// (4 * tokens)^2 floats.
constexpr int kTokenLimit = 16384;

struct qwen_block {
    ggml_tensor *q_w = nullptr, *q_b = nullptr, *k_w = nullptr, *k_b = nullptr;
    ggml_tensor *v_w = nullptr, *v_b = nullptr, *o_w = nullptr, *o_b = nullptr;
    ggml_tensor *ln1_w = nullptr, *ln1_b = nullptr, *ln2_w = nullptr, *ln2_b = nullptr;
    ggml_tensor *up_w = nullptr, *up_b = nullptr, *gate_w = nullptr, *gate_b = nullptr;
    ggml_tensor *down_w = nullptr, *down_b = nullptr;
};

class qwen25vl final : public vision_family {
public:
    explicit qwen25vl(const gguf_file & f) : path_(f.path()) {
        image_size_ = read_dim(f, "clip.vision.image_size", 1 << 16);
        patch_size_ = read_dim(f, "clip.vision.patch_size", 1024);
        n_embd_ = read_dim(f, "clip.vision.embedding_length", 1 << 16);
        n_head_ = read_dim(f, "clip.vision.attention.head_count", 1 << 12);
        n_layer_ = read_dim(f, "clip.vision.block_count", 1024);
        eps_ = f.get_f32("clip.vision.attention.layer_norm_epsilon");
        if (!(eps_ > 0.0f) || !std::isfinite(eps_)) {
            throw error(HP_ERR_FORMAT, strfmt("%s: clip.vision.attention.layer_norm_epsilon = %g, want a finite value > 0",
                                              path_.c_str(), eps_));
        }
        if (n_embd_ % n_head_ != 0 || (n_embd_ / n_head_) % 4 != 0) {
            throw error(HP_ERR_FORMAT, strfmt("%s: clip.vision.embedding_length %d / attention.head_count %d must be a "
                                              "multiple of 4 (2-D rotary sections)",
                                              path_.c_str(), n_embd_, n_head_));
        }
        const bool gelu = f.get_bool("clip.use_gelu", false);
        const bool silu = f.get_bool("clip.use_silu", false);
        if (gelu && silu) {
            throw error(HP_ERR_FORMAT, strfmt("%s: clip.use_gelu and clip.use_silu are both true", path_.c_str()));
        }
        act_ = gelu ? ffn_act::gelu : silu ? ffn_act::silu : ffn_act::gelu_quick;
        read_norm_stats(f, mean_, std_);

        // clip.cpp requires n_wa_pattern for this projector (0: no windows).
        if (!f.has("clip.vision.n_wa_pattern")) {
            throw error(HP_ERR_FORMAT, strfmt("%s: missing key clip.vision.n_wa_pattern (Qwen2.5-VL's full-attention "
                                              "block period)",
                                              path_.c_str()));
        }
        const uint32_t wa = f.get_u32("clip.vision.n_wa_pattern");
        if (wa > 1024) {
            throw error(HP_ERR_FORMAT, strfmt("%s: clip.vision.n_wa_pattern = %u is out of range (0..1024)", path_.c_str(), wa));
        }
        wa_pattern_ = (int) wa;
        // The pinned llama.cpp merges 2x2 and uses 112 px windows whatever
        // the file says; a file that says otherwise describes a model that
        // llama.cpp would run differently from how it was trained.
        const uint32_t merge = f.get_u32("clip.vision.spatial_merge_size", kMerge);
        if (merge != kMerge) {
            throw error(HP_ERR_UNSUP, strfmt("%s: clip.vision.spatial_merge_size %u: the pinned llama.cpp merges 2x2 "
                                             "patches for Qwen2.5-VL",
                                             path_.c_str(), merge));
        }
        const uint32_t window = f.get_u32("clip.vision.window_size", kWindow);
        if (window != kWindow) {
            throw error(HP_ERR_UNSUP, strfmt("%s: clip.vision.window_size %u: the pinned llama.cpp uses %d px windows "
                                             "for Qwen2.5-VL",
                                             path_.c_str(), window, kWindow));
        }
    }

    void declare(const gguf_file & f, ggml_context * ctx_w, ggml_type mm_type) override {
        auto take = [&](const std::string & name, bool required, std::initializer_list<int64_t> shape, bool matmul) {
            return declare_weight(f, ctx_w, name, required, shape, matmul, mm_type);
        };
        const int64_t E = n_embd_, P = patch_size_;
        for (const char * name : {"v.patch_embd.weight", "v.patch_embd.weight.1"}) {
            ggml_tensor * pe = f.require(name);
            if (pe->type != GGML_TYPE_F32 && pe->type != GGML_TYPE_F16) {
                throw error(HP_ERR_UNSUP, strfmt("%s: tensor %s has type %s, want f32 or f16", path_.c_str(), name,
                                                 ggml_type_name(pe->type)));
            }
        }
        patch0_ = take("v.patch_embd.weight", true, {P, P, 3, E}, true);
        patch1_ = take("v.patch_embd.weight.1", true, {P, P, 3, E}, true);
        for (const char * name : {"v.patch_embd.bias", "v.class_embd", "v.position_embd.weight"}) {
            if (f.tensor(name)) {
                throw error(HP_ERR_UNSUP, strfmt("%s: tensor %s: llama.cpp's Qwen2.5-VL graph has none", path_.c_str(), name));
            }
        }
        pre_w_ = take("v.pre_ln.weight", false, {E}, false);
        pre_b_ = take("v.pre_ln.bias", false, {E}, false);
        post_w_ = take("v.post_ln.weight", false, {E}, false);
        post_b_ = take("v.post_ln.bias", false, {E}, false);

        blocks_.resize(n_layer_);
        for (int il = 0; il < n_layer_; il++) {
            auto name = [&](const char * t, const char * s) { return strfmt("v.blk.%d.%s.%s", il, t, s); };
            qwen_block & b = blocks_[il];
            if (f.tensor(name("attn_qkv", "weight"))) {
                throw error(HP_ERR_UNSUP, strfmt("%s: fused attn_qkv tensors are not supported", path_.c_str()));
            }
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
            // clip.cpp swaps ffn_up and ffn_down (weights and biases) when
            // ffn_down takes the embedding (is_ffn_swapped: old Qwen
            // conversions), and so do we. The hidden width comes from the
            // tensors: old conversions store feed_forward_length 0.
            ggml_tensor * up_m = f.require(name("ffn_up", "weight"));
            ggml_tensor * down_m = f.require(name("ffn_down", "weight"));
            const bool swapped = down_m->ne[0] == E;
            const char * up = swapped ? "ffn_down" : "ffn_up";
            const char * down = swapped ? "ffn_up" : "ffn_down";
            const int64_t F = swapped ? down_m->ne[1] : up_m->ne[1];
            if (il == 0) n_ff_ = (int) F;
            if (F != n_ff_) {
                throw error(HP_ERR_FORMAT, strfmt("%s: block %d's MLP is %lld wide, block 0's %d", path_.c_str(), il,
                                                  (long long) F, n_ff_));
            }
            b.up_w = take(name(up, "weight"), true, {E, F}, true);
            b.up_b = take(name(up, "bias"), false, {F}, false);
            b.gate_w = take(name("ffn_gate", "weight"), false, {E, F}, true);
            b.gate_b = take(name("ffn_gate", "bias"), false, {F}, false);
            b.down_w = take(name(down, "weight"), true, {F, E}, true);
            b.down_b = take(name(down, "bias"), false, {E}, false);
        }
        const int64_t M = E * kMerge * kMerge;
        ggml_tensor * mm0 = f.require("mm.0.weight");
        const int64_t hidden = mm0->ne[1];
        mm0_w_ = take("mm.0.weight", true, {M, hidden}, true);
        mm0_b_ = take("mm.0.bias", true, {hidden}, false);
        ggml_tensor * mm2 = f.require("mm.2.weight");
        proj_dim_ = (int) mm2->ne[1];
        mm2_w_ = take("mm.2.weight", true, {hidden, proj_dim_}, true);
        mm2_b_ = take("mm.2.bias", true, {proj_dim_}, false);
        // clip.cpp reshapes the merger's output by projection_dim.
        const uint32_t pd = f.get_u32("clip.vision.projection_dim", (uint32_t) proj_dim_);
        if ((int) pd != proj_dim_) {
            throw error(HP_ERR_FORMAT, strfmt("%s: clip.vision.projection_dim %u differs from mm.2.weight's %d outputs",
                                              path_.c_str(), pd, proj_dim_));
        }
    }

    void fill_info(hp_encoder_info & info) const override {
        snprintf(info.projector, sizeof(info.projector), "qwen2.5vl_merger");
        const int a = patch_size_ * kMerge;
        info.image_size = image_size_;
        info.patch_size = patch_size_;
        info.grid_w = info.grid_h = info.n_patches = 0;
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
        info.n_merge = kMerge;
        info.dynamic = 1;
        info.min_pixels = kMinTokens * a * a;
        info.max_pixels = kMaxTokens * a * a;
        info.max_tokens = kTokenLimit;
        info.n_wa_pattern = wa_pattern_;
        info.window_size = kWindow;
    }

    int n_run() const override { return n_layer_; }
    int default_object_layer() const override { return 16; }

    image_dims dims(int nx, int ny) const override {
        const int a = patch_size_ * kMerge;
        if (nx < a || ny < a || nx % a != 0 || ny % a != 0) {
            throw error(HP_ERR_ARG, strfmt("image is %dx%d: Qwen2.5-VL takes sides that are positive multiples of %d "
                                           "(preprocess it first)",
                                           nx, ny, a));
        }
        const int64_t tokens = (int64_t) (nx / a) * (ny / a);
        if (tokens > kTokenLimit) {
            throw error(HP_ERR_ARG, strfmt("image is %dx%d, %lld tokens: more than the %d the encoder takes", nx, ny,
                                           (long long) tokens, kTokenLimit));
        }
        return image_dims{(int) tokens, (int) tokens * kMerge * kMerge};
    }

    // The smallest input (one window of 4x4 groups): the graph built at open
    // only serves the flash-attention check and is rebuilt for real images.
    void default_size(int & nx, int & ny) const override { nx = ny = patch_size_ * kMerge * 4; }

    size_t max_nodes(const graph_opts & o) const override {
        return 128 + (size_t) n_layer_ * 64 + 2 * 16 * (size_t) n_chunks(o);
    }
    size_t n_weights() const override { return 32 + (size_t) n_layer_ * 24; }

    graph_out build(ggml_context * ctx0, ggml_cgraph * gf, const graph_opts & o) const override {
        const int P = patch_size_, E = n_embd_, H = n_head_, D = n_embd_ / n_head_;
        const int px = o.nx / P, py = o.ny / P; // patch grid
        const int n = px * py;                  // tokens inside the ViT
        const int nm = n / (kMerge * kMerge);   // merged tokens
        const float kq_scale = 1.0f / sqrtf((float) D);
        const bool windows = wa_pattern_ > 0;

        ggml_tensor * raw = ggml_new_tensor_3d(ctx0, GGML_TYPE_F32, o.nx, o.ny, 3);
        ggml_set_name(raw, "inp_raw");
        ggml_set_input(raw);

        // Patch embedding, then patches reordered group by group.
        ggml_tensor * inp = ggml_conv_2d(ctx0, patch0_, raw, P, P, 0, 0, 1, 1);
        inp = ggml_add(ctx0, inp, ggml_conv_2d(ctx0, patch1_, raw, P, P, 0, 0, 1, 1));
        inp = ggml_permute(ctx0, inp, 1, 2, 0, 3); // [px, py, E] -> [E, px, py]
        inp = ggml_cont_4d(ctx0, inp, E * 2, px / 2, py, 1);
        inp = ggml_reshape_4d(ctx0, inp, E * 2, px / 2, 2, py / 2);
        inp = ggml_permute(ctx0, inp, 0, 2, 1, 3);
        inp = ggml_cont_3d(ctx0, inp, E, n, 1);

        ggml_tensor * positions = ggml_new_tensor_1d(ctx0, GGML_TYPE_I32, n * 4);
        ggml_set_name(positions, "positions");
        ggml_set_input(positions);

        ggml_tensor * x = inp;
        if (pre_w_) x = norm(ctx0, x, pre_w_, pre_b_);

        ggml_tensor *mask = nullptr, *mask_fa = nullptr, *window_idx = nullptr;
        if (windows) {
            ggml_tensor * inv_idx = ggml_new_tensor_1d(ctx0, GGML_TYPE_I32, nm);
            ggml_set_name(inv_idx, "inv_window_idx");
            ggml_set_input(inv_idx);
            window_idx = ggml_new_tensor_1d(ctx0, GGML_TYPE_I32, nm);
            ggml_set_name(window_idx, "window_idx");
            ggml_set_input(window_idx);
            mask = ggml_new_tensor_2d(ctx0, GGML_TYPE_F32, n, n);
            ggml_set_name(mask, "window_mask");
            ggml_set_input(mask);
            if (o.flash_attn) mask_fa = ggml_cast(ctx0, mask, GGML_TYPE_F16);
            x = ggml_reshape_2d(ctx0, x, E * 4, nm);
            x = ggml_get_rows(ctx0, x, inv_idx);
            x = ggml_reshape_3d(ctx0, x, E, n, 1);
        }

        int sections[GGML_MROPE_SECTIONS] = {D / 4, D / 4, D / 4, D / 4};
        graph_out out;
        for (int il = 0; il < n_layer_; il++) {
            const qwen_block & b = blocks_[il];
            const bool full = !windows || (il + 1) % wa_pattern_ == 0;
            const bool probe_obj = il == o.object_block;
            const bool probe_deep = il == n_layer_ - 1;

            ggml_tensor * cur = norm(ctx0, x, b.ln1_w, b.ln1_b);
            ggml_tensor * Q = lin(ctx0, b.q_w, b.q_b, cur);
            ggml_tensor * K = lin(ctx0, b.k_w, b.k_b, cur);
            ggml_tensor * V = lin(ctx0, b.v_w, b.v_b, cur);
            Q = ggml_reshape_3d(ctx0, Q, D, H, n);
            K = ggml_reshape_3d(ctx0, K, D, H, n);
            V = ggml_reshape_3d(ctx0, V, D, H, n);
            Q = ggml_rope_multi(ctx0, Q, positions, nullptr, D / 2, sections, GGML_ROPE_TYPE_VISION, 32768, 10000, 1, 0, 1,
                                32, 1);
            K = ggml_rope_multi(ctx0, K, positions, nullptr, D / 2, sections, GGML_ROPE_TYPE_VISION, 32768, 10000, 1, 0, 1,
                                32, 1);
            ggml_build_forward_expand(gf, Q);
            ggml_build_forward_expand(gf, K);
            ggml_build_forward_expand(gf, V);
            ggml_tensor * q = ggml_permute(ctx0, Q, 0, 2, 1, 3); // [D, n, H]
            ggml_tensor * k = ggml_permute(ctx0, K, 0, 2, 1, 3);
            ggml_tensor * kq_mask = full ? nullptr : mask;

            if (probe_obj || probe_deep) {
                ggml_tensor * s = probe_scores(ctx0, gf, q, k, kq_mask, kq_scale, o.probe_bytes);
                // window order -> raster order of the groups -> raster
                // order of the patches
                if (windows) {
                    s = ggml_reshape_2d(ctx0, s, 4, nm);
                    s = ggml_get_rows(ctx0, s, window_idx);
                }
                s = ggml_reshape_4d(ctx0, s, 2, 2, px / 2, py / 2); // [dx, dy, X, Y]
                s = ggml_permute(ctx0, s, 0, 2, 1, 3);              // [dx, X, dy, Y]
                s = ggml_cont(ctx0, s);
                s = ggml_reshape_1d(ctx0, s, n);
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
                cur = ggml_flash_attn_ext(ctx0, q, kf, v, full ? nullptr : mask_fa, kq_scale, 0.0f, 0.0f);
                ggml_flash_attn_ext_set_prec(cur, GGML_PREC_F32);
                cur = ggml_reshape_2d(ctx0, cur, cur->ne[0] * cur->ne[1], cur->ne[2] * cur->ne[3]);
            } else {
                ggml_tensor * v = ggml_cont(ctx0, ggml_permute(ctx0, V, 1, 2, 0, 3));
                ggml_tensor * kq = ggml_mul_mat(ctx0, k, q);
                kq = ggml_soft_max_ext(ctx0, kq, kq_mask, kq_scale, 0.0f);
                ggml_tensor * kqv = ggml_mul_mat(ctx0, v, kq);
                cur = ggml_permute(ctx0, kqv, 0, 2, 1, 3);
                cur = ggml_cont_2d(ctx0, cur, E, n);
            }
            cur = lin(ctx0, b.o_w, b.o_b, cur);
            cur = ggml_add(ctx0, cur, x);
            x = cur;

            cur = norm(ctx0, cur, b.ln2_w, b.ln2_b);
            cur = ffn(ctx0, b, cur);
            x = ggml_add(ctx0, x, cur);
        }
        if (post_w_) x = norm(ctx0, x, post_w_, post_b_);

        ggml_tensor * e = ggml_reshape_3d(ctx0, x, E * 4, nm, 1);
        e = ggml_add(ctx0, ggml_mul_mat(ctx0, mm0_w_, e), mm0_b_);
        e = ggml_gelu(ctx0, e);
        e = ggml_add(ctx0, ggml_mul_mat(ctx0, mm2_w_, e), mm2_b_);
        if (windows) {
            e = ggml_reshape_2d(ctx0, e, proj_dim_, nm);
            e = ggml_get_rows(ctx0, e, window_idx);
        }
        e = ggml_reshape_2d(ctx0, e, proj_dim_, nm);
        ggml_set_name(e, "hp_embd");
        ggml_set_output(e);
        ggml_build_forward_expand(gf, e);
        out.embd = e;
        return out;
    }

    void set_inputs(ggml_cgraph * gf, const float * img, int nx, int ny, const graph_opts &) const override {
        set_planar_image(gf, img, nx, ny);

        const int P = patch_size_;
        const int ipw = nx / P, iph = ny / P;                 // patches
        const int pw = ipw / kMerge, ph = iph / kMerge;       // groups
        const int n = ipw * iph, nm = pw * ph, g = kMerge * kMerge;
        // idx[raster group] = its place in window order; inv_idx the inverse.
        std::vector<int32_t> idx(nm), inv_idx(nm);
        if (wa_pattern_ > 0) {
            const int gw = kWindow / P / kMerge; // window side in groups
            // Window blocks of the mask: rows and columns of one window's
            // patches attend to each other, everything else is -FLT_MAX.
            std::vector<float> mask((size_t) n * n, std::numeric_limits<float>::lowest());
            int dst = 0;
            for (int y = 0; y < ph; y += gw) {
                for (int x = 0; x < pw; x += gw) {
                    const int wh = std::min(gw, ph - y), ww = std::min(gw, pw - x);
                    const int first = dst;
                    for (int dy = 0; dy < wh; dy++) {
                        for (int dx = 0; dx < ww; dx++) {
                            const int src = (y + dy) * pw + (x + dx);
                            idx[src] = dst;
                            inv_idx[dst] = src;
                            dst++;
                        }
                    }
                    for (int r = first * g; r < dst * g; r++) {
                        std::fill(mask.begin() + (size_t) r * n + (size_t) first * g,
                                  mask.begin() + (size_t) r * n + (size_t) dst * g, 0.0f);
                    }
                }
            }
            ggml_backend_tensor_set(ggml_graph_get_tensor(gf, "window_idx"), idx.data(), 0, idx.size() * sizeof(int32_t));
            ggml_backend_tensor_set(ggml_graph_get_tensor(gf, "inv_window_idx"), inv_idx.data(), 0,
                                    inv_idx.size() * sizeof(int32_t));
            ggml_backend_tensor_set(ggml_graph_get_tensor(gf, "window_mask"), mask.data(), 0, mask.size() * sizeof(float));
        } else {
            for (int i = 0; i < nm; i++) idx[i] = i;
        }
        // Rotary positions (row, column, row, column) of each token, at its
        // place in window order.
        std::vector<int32_t> pos((size_t) n * 4);
        int ptr = 0;
        for (int y = 0; y < iph; y += kMerge) {
            for (int x = 0; x < ipw; x += kMerge) {
                for (int dy = 0; dy < kMerge; dy++) {
                    for (int dx = 0; dx < kMerge; dx++) {
                        const int at = idx[ptr / g] * g + ptr % g;
                        pos[at] = y + dy;
                        pos[n + at] = x + dx;
                        pos[2 * n + at] = y + dy;
                        pos[3 * n + at] = x + dx;
                        ptr++;
                    }
                }
            }
        }
        ggml_backend_tensor_set(ggml_graph_get_tensor(gf, "positions"), pos.data(), 0, pos.size() * sizeof(int32_t));
    }

private:
    int n_chunks(const graph_opts & o) const {
        const int n = (o.nx / patch_size_) * (o.ny / patch_size_);
        if (n <= 0) return 1;
        const int r = probe_chunk_rows(n, n_head_, o.probe_bytes);
        return (n + r - 1) / r;
    }

    ggml_tensor * norm(ggml_context * ctx0, ggml_tensor * x, ggml_tensor * w, ggml_tensor * b) const {
        return hp::norm(ctx0, x, w, b, eps_, true);
    }
    ggml_tensor * ffn(ggml_context * ctx0, const qwen_block & b, ggml_tensor * x) const {
        return hp::ffn(ctx0, x, act_, b.up_w, b.up_b, b.gate_w, b.gate_b, b.down_w, b.down_b);
    }

    std::string path_;
    int image_size_ = 0, patch_size_ = 0, n_embd_ = 0, n_head_ = 0, n_ff_ = 0, n_layer_ = 0;
    int wa_pattern_ = 0, proj_dim_ = 0;
    float eps_ = 0;
    float mean_[3] = {0, 0, 0}, std_[3] = {1, 1, 1};
    ffn_act act_ = ffn_act::silu;

    ggml_tensor *patch0_ = nullptr, *patch1_ = nullptr;
    ggml_tensor *pre_w_ = nullptr, *pre_b_ = nullptr, *post_w_ = nullptr, *post_b_ = nullptr;
    ggml_tensor *mm0_w_ = nullptr, *mm0_b_ = nullptr, *mm2_w_ = nullptr, *mm2_b_ = nullptr;
    std::vector<qwen_block> blocks_;
};

} // namespace

std::unique_ptr<vision_family> make_qwen25vl(const gguf_file & f) { return std::make_unique<qwen25vl>(f); }

} // namespace hp
