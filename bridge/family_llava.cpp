// family_llava.cpp: CLIP ViT (class token, pre-LN) + LLaVA MLP projector,
// built op for op like llama.cpp's clip (tools/mtmd/models/llava.cpp) so the
// embeddings match, plus the two attention-score outputs HiPrune needs.
#include "family_common.h"

#include <cmath>
#include <cstring>
#include <set>
#include <string>

namespace hp {

namespace {

struct vit_block {
    ggml_tensor *q_w = nullptr, *q_b = nullptr, *k_w = nullptr, *k_b = nullptr;
    ggml_tensor *v_w = nullptr, *v_b = nullptr, *o_w = nullptr, *o_b = nullptr;
    ggml_tensor *ln1_w = nullptr, *ln1_b = nullptr, *ln2_w = nullptr, *ln2_b = nullptr;
    ggml_tensor *up_w = nullptr, *up_b = nullptr, *down_w = nullptr, *down_b = nullptr;
};

// blocks_to_run is the one place that decides how deep the encoder goes: the
// projector reads the output of the last block run, and HiPrune's deep layer
// is that block's attention.
//
// What LLaVA-1.5 was trained on: HF CLIPVisionModel's hidden_states[-2]
// (mm_vision_select_layer = -2), where hidden_states[0] is the embeddings and
// hidden_states[i] the output of block i (1-based), so CLIP-L's 24 blocks give
// 25 entries and [-2] is the output of block 23.
//
// How llama.cpp's converters store that (read in ggml-org/llama.cpp):
//  - projector type "mlp" files come only from the legacy converter,
//    tools/mtmd/legacy-models/convert_image_encoder_to_gguf.py (2023-24:
//    examples/llava/convert-image-encoder-to-gguf.py). convert_hf_to_gguf.py
//    writes no "mlp" (gguf-py's VisionProjectorType has none, and its
//    LlavaVisionModel raises "Unsupported model type" for anything but
//    Pixtral), and its MmprojModel would store the whole tower
//    (block_count = num_hidden_layers) with general.type = "mmproj".
//  - The legacy converter keeps the blocks up to the selected layer and
//    nothing after. With no select layer in the config it runs
//      block_count = v_hparams["num_hidden_layers"] - 1 if has_llava_projector ...
//      model.vision_model.encoder.layers.pop(-1)
//    and writes no clip.vision.feature_layer (all 2023-era files: 23 of 24
//    blocks, general.description "image encoder for LLaVA"). When the
//    config has vision_feature_layer / mm_vision_select_layer it writes
//      to_non_negative = ... num_hidden_layers + layer_idx + 1
//      block_count = max(feature_layers);  layers[:max(feature_layers)]
//      fout.add_array("clip.vision.feature_layer", feature_layers)
//    i.e. non-negative HF hidden_states indices (its docstring: "[<emb
//    input>, <output of enc block 0>, ...]"), int32: -2 on CLIP-L is [23].
// So the layer LLaVA selects is the output of block L for a single feature
// layer L, and of the last stored block when the key is absent.
//
// The pinned llama.cpp (tools/mtmd/models/llava.cpp) runs
// max_feature_layer = the deepest feature layer when the key is set, else
// n_layer - 1: right for files with the key, one block short for files
// without it (llama.cpp issue 25817). HP_LAYOUT_LLAMACPP reproduces that.
int blocks_to_run(const gguf_file & f, int n_block, int layout) {
    const std::vector<int32_t> fl = f.get_arr_i32("clip.vision.feature_layer");
    const std::set<int32_t> layers(fl.begin(), fl.end());
    if (layers.size() > 1) {
        std::string list;
        for (int32_t l : fl) list += (list.empty() ? "" : ", ") + std::to_string(l);
        throw error(HP_ERR_UNSUP, strfmt("%s: clip.vision.feature_layer = [%s] concatenates the features of several layers "
                                         "(e.g. Granite Vision); only a single feature layer is supported",
                                         f.path().c_str(), list.c_str()));
    }
    if (layers.size() == 1) {
        const int l = *layers.begin();
        if (l < 1 || l > n_block) {
            throw error(HP_ERR_FORMAT, strfmt("%s: clip.vision.feature_layer %d is outside 1..%d (hidden-state index: "
                                              "0 is the embeddings, i the output of block i; block_count is %d)",
                                              f.path().c_str(), l, n_block, n_block));
        }
        return l;
    }
    const int n = layout == HP_LAYOUT_LLAMACPP ? n_block - 1 : n_block;
    if (n < 1) {
        throw error(HP_ERR_UNSUP, strfmt("%s: clip.vision.block_count %d: llama.cpp's llava graph would run no block",
                                         f.path().c_str(), n_block));
    }
    return n;
}

class llava_mlp final : public vision_family {
public:
    llava_mlp(const gguf_file & f, int layout) : path_(f.path()) {
        // Bounds far above any CLIP (ViT-G: 1664 wide, 48 blocks, 448 px).
        auto dim = [&](const char * key, uint32_t hi) { return read_dim(f, key, hi); };
        image_size_ = dim("clip.vision.image_size", 8192);
        patch_size_ = dim("clip.vision.patch_size", 8192);
        n_embd_ = dim("clip.vision.embedding_length", 1 << 16);
        n_head_ = dim("clip.vision.attention.head_count", 1 << 16);
        n_ff_ = dim("clip.vision.feed_forward_length", 1 << 18);
        n_block_ = dim("clip.vision.block_count", 1024);
        eps_ = f.get_f32("clip.vision.attention.layer_norm_epsilon");
        const bool gelu = f.get_bool("clip.use_gelu", false);
        const bool silu = f.get_bool("clip.use_silu", false);
        if (gelu && silu) {
            throw error(HP_ERR_FORMAT, strfmt("%s: clip.use_gelu and clip.use_silu are both true", path_.c_str()));
        }
        act_ = gelu ? ffn_act::gelu : silu ? ffn_act::silu : ffn_act::gelu_quick;

        read_norm_stats(f, mean_, std_);
        if (image_size_ <= 0 || patch_size_ <= 0 || image_size_ % patch_size_ != 0) {
            throw error(HP_ERR_FORMAT, strfmt("%s: clip.vision.image_size %d is not a multiple of clip.vision.patch_size %d",
                                              path_.c_str(), image_size_, patch_size_));
        }
        if (n_embd_ <= 0 || n_head_ <= 0 || n_embd_ % n_head_ != 0) {
            throw error(HP_ERR_FORMAT, strfmt("%s: clip.vision.embedding_length %d is not divisible by attention.head_count %d",
                                              path_.c_str(), n_embd_, n_head_));
        }
        if (!(eps_ > 0.0f) || !std::isfinite(eps_)) {
            throw error(HP_ERR_FORMAT, strfmt("%s: clip.vision.attention.layer_norm_epsilon = %g, want a finite value > 0",
                                              path_.c_str(), eps_));
        }
        n_run_ = blocks_to_run(f, n_block_, layout);
        grid_ = image_size_ / patch_size_;
        n_patches_ = grid_ * grid_;
    }

    void declare(const gguf_file & f, ggml_context * ctx_w, ggml_type mm_type) override {
        // widen: 1-D parameters in F16 become F32 so every add/mul sees F32.
        // convert: a matrix the graph multiplies, which takes mm_type; the
        // position table keeps its stored type (it is added, not multiplied).
        auto take = [&](const std::string & name, bool required, std::initializer_list<int64_t> shape, bool matmul,
                        bool convert = true) {
            return declare_weight(f, ctx_w, name, required, shape, matmul, convert ? mm_type : GGML_TYPE_COUNT);
        };
        const int64_t E = n_embd_, P = patch_size_;
        has_cls_ = f.tensor("v.class_embd") != nullptr;
        const int64_t n_pos = n_patches_ + (has_cls_ ? 1 : 0);
        // The position table says whether the file was made with a class
        // token: name the missing tensor rather than the table's shape.
        if (ggml_tensor * pm = f.tensor("v.position_embd.weight")) {
            if (!has_cls_ && pm->ne[1] == n_pos + 1) {
                throw error(HP_ERR_FORMAT, strfmt("%s: missing tensor v.class_embd: v.position_embd.weight has %lld positions, "
                                                  "the %d patches and a class token",
                                                  path_.c_str(), (long long) pm->ne[1], n_patches_));
            }
        }

        ggml_tensor * pe = f.require("v.patch_embd.weight");
        if (pe->type != GGML_TYPE_F32 && pe->type != GGML_TYPE_F16) {
            throw error(HP_ERR_UNSUP, strfmt("%s: tensor v.patch_embd.weight has type %s, want f32 or f16", path_.c_str(),
                                             ggml_type_name(pe->type)));
        }
        patch_w_ = take("v.patch_embd.weight", true, {P, P, 3, E}, true);
        patch_b_ = take("v.patch_embd.bias", false, {E}, false);
        cls_ = take("v.class_embd", false, {E}, false);
        pos_ = take("v.position_embd.weight", true, {E, n_pos}, true, false);
        if (pos_->type != GGML_TYPE_F32 && pos_->type != GGML_TYPE_F16) {
            throw error(HP_ERR_UNSUP, strfmt("%s: tensor v.position_embd.weight has type %s, want f32 or f16", path_.c_str(),
                                             ggml_type_name(pos_->type)));
        }
        pre_w_ = take("v.pre_ln.weight", false, {E}, false);
        pre_b_ = take("v.pre_ln.bias", false, {E}, false);
        post_w_ = take("v.post_ln.weight", false, {E}, false);
        post_b_ = take("v.post_ln.bias", false, {E}, false);

        // A block_count past the stored blocks would otherwise be reported
        // as the first missing block tensor.
        {
            auto stored = [&](int il) {
                return f.tensor(strfmt("v.blk.%d.attn_q.weight", il)) || f.tensor(strfmt("v.blk.%d.attn_qkv.weight", il));
            };
            int n_stored = 0;
            while (n_stored < n_run_ && stored(n_stored)) n_stored++;
            bool later = false;
            for (int il = n_stored + 1; il < n_run_ && !later; il++) later = stored(il);
            if (n_stored < n_run_ && !later) {
                throw error(HP_ERR_FORMAT, strfmt("%s: the encoder runs %d blocks (clip.vision.block_count %d) but the file "
                                                  "stores %d (no tensor v.blk.%d.attn_q.weight)",
                                                  path_.c_str(), n_run_, n_block_, n_stored, n_stored));
            }
        }
        blocks_.resize(n_run_);
        for (int il = 0; il < n_run_; il++) {
            auto name = [&](const char * t, const char * s) { return strfmt("v.blk.%d.%s.%s", il, t, s); };
            vit_block & b = blocks_[il];
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
            // Older LLaVA conversions store fc1 as ffn_down and fc2 as
            // ffn_up; llama.cpp tells them apart by shape (clip.cpp,
            // is_ffn_swapped: ffn_down takes the embedding), and so do we.
            // A pair where both or neither take it cannot be told apart, so
            // the error names both tensors rather than a bias further on.
            ggml_tensor * up_m = f.require(name("ffn_up", "weight"));
            ggml_tensor * down_m = f.require(name("ffn_down", "weight"));
            const bool up_in = up_m->ne[0] == E, down_in = down_m->ne[0] == E;
            if (E != n_ff_ && up_in == down_in) {
                throw error(HP_ERR_FORMAT, strfmt("%s: tensors %s [%lld %lld] and %s [%lld %lld]: one must be [%lld %d] (the "
                                                  "embedding to feed_forward_length) and the other [%d %lld]",
                                                  path_.c_str(), name("ffn_up", "weight").c_str(), (long long) up_m->ne[0],
                                                  (long long) up_m->ne[1], name("ffn_down", "weight").c_str(),
                                                  (long long) down_m->ne[0], (long long) down_m->ne[1], (long long) E, n_ff_,
                                                  n_ff_, (long long) E));
            }
            const bool swapped = down_in;
            const char * fc1 = swapped ? "ffn_down" : "ffn_up";
            const char * fc2 = swapped ? "ffn_up" : "ffn_down";
            b.up_w = take(name(fc1, "weight"), true, {E, n_ff_}, true);
            b.up_b = take(name(fc1, "bias"), false, {n_ff_}, false);
            b.down_w = take(name(fc2, "weight"), true, {n_ff_, E}, true);
            b.down_b = take(name(fc2, "bias"), false, {E}, false);
        }
        if (f.tensor("mm.1.weight")) {
            throw error(HP_ERR_UNSUP, strfmt("%s: projector mlp_norm (mm.1.*) is not supported", path_.c_str()));
        }
        ggml_tensor * mm0 = f.require("mm.0.weight");
        const int64_t hidden = mm0->ne[1];
        mm0_w_ = take("mm.0.weight", true, {E, hidden}, true);
        mm0_b_ = take("mm.0.bias", true, {hidden}, false);
        ggml_tensor * mm2 = f.require("mm.2.weight");
        proj_dim_ = (int) mm2->ne[1];
        mm2_w_ = take("mm.2.weight", true, {hidden, proj_dim_}, true);
        mm2_b_ = take("mm.2.bias", true, {proj_dim_}, false);
    }

    void fill_info(hp_encoder_info & info) const override {
        snprintf(info.projector, sizeof(info.projector), "mlp");
        info.image_size = image_size_;
        info.patch_size = patch_size_;
        info.grid_w = info.grid_h = grid_;
        info.n_patches = n_patches_;
        info.n_embd = n_embd_;
        info.n_head = n_head_;
        info.n_ff = n_ff_;
        info.n_block = n_block_;
        info.n_run = n_run_;
        info.proj_dim = proj_dim_;
        info.n_merge = 1;
        info.has_cls = has_cls_ ? 1 : 0;
        for (int i = 0; i < 3; i++) {
            info.mean[i] = mean_[i];
            info.std[i] = std_[i];
        }
        info.eps = eps_;
    }

    int n_run() const override { return n_run_; }
    // CLIP-L's object layer (the authors' LLaVA setting).
    int default_object_layer() const override { return 9; }
    image_dims dims(int nx, int ny) const override {
        if (nx != image_size_ || ny != image_size_) {
            throw error(HP_ERR_ARG, strfmt("image is %dx%d, the encoder takes %dx%d (preprocess it first)", nx, ny, image_size_,
                                           image_size_));
        }
        return image_dims{n_patches_, n_patches_};
    }
    void default_size(int & nx, int & ny) const override { nx = ny = image_size_; }
    size_t max_nodes(const graph_opts &) const override { return 64 + (size_t) n_run_ * 64; }
    size_t n_weights() const override { return 16 + (size_t) n_run_ * 16; }

    graph_out build(ggml_context * ctx0, ggml_cgraph * gf, const graph_opts & o) const override {
        const int E = n_embd_, H = n_head_, D = n_embd_ / n_head_;
        const int n_pos = n_patches_ + (has_cls_ ? 1 : 0);
        const float kq_scale = 1.0f / sqrtf((float) D);

        ggml_tensor * raw = ggml_new_tensor_3d(ctx0, GGML_TYPE_F32, image_size_, image_size_, 3);
        ggml_set_name(raw, "inp_raw");
        ggml_set_input(raw);

        ggml_tensor * inp = ggml_conv_2d(ctx0, patch_w_, raw, patch_size_, patch_size_, 0, 0, 1, 1);
        inp = ggml_reshape_2d(ctx0, inp, n_patches_, E);
        inp = ggml_cont(ctx0, ggml_transpose(ctx0, inp));
        if (patch_b_) inp = ggml_add(ctx0, inp, patch_b_);
        if (cls_) {
            inp = o.layout == HP_LAYOUT_LLAMACPP ? ggml_concat(ctx0, inp, cls_, 1) : ggml_concat(ctx0, cls_, inp, 1);
        }
        ggml_tensor * positions = ggml_new_tensor_1d(ctx0, GGML_TYPE_I32, n_pos);
        ggml_set_name(positions, "positions");
        ggml_set_input(positions);
        inp = ggml_add(ctx0, inp, ggml_get_rows(ctx0, pos_, positions));

        ggml_tensor * x = inp;
        if (pre_w_) x = norm(ctx0, x, pre_w_, pre_b_);

        // Tokens whose scores are reported: the ones the projector emits.
        const size_t first = has_cls_ ? 1 : 0;
        graph_out out;
        for (int il = 0; il < n_run_; il++) {
            const vit_block & b = blocks_[il];
            const bool probe_obj = il == o.object_block;
            const bool probe_deep = il == n_run_ - 1;
            ggml_tensor * cur = norm(ctx0, x, b.ln1_w, b.ln1_b);

            ggml_tensor * Q = lin(ctx0, b.q_w, b.q_b, cur);
            ggml_tensor * K = lin(ctx0, b.k_w, b.k_b, cur);
            ggml_tensor * V = lin(ctx0, b.v_w, b.v_b, cur);
            Q = ggml_reshape_3d(ctx0, Q, D, H, n_pos);
            K = ggml_reshape_3d(ctx0, K, D, H, n_pos);
            V = ggml_reshape_3d(ctx0, V, D, H, n_pos);
            ggml_build_forward_expand(gf, Q);
            ggml_build_forward_expand(gf, K);
            ggml_build_forward_expand(gf, V);
            ggml_tensor * q = ggml_permute(ctx0, Q, 0, 2, 1, 3);
            ggml_tensor * k = ggml_permute(ctx0, K, 0, 2, 1, 3);

            ggml_tensor * kq = nullptr; // softmax probabilities [n_kv, n_q, H], when materialised
            if (probe_obj || probe_deep || !o.flash_attn) {
                kq = ggml_mul_mat(ctx0, k, q);
                kq = ggml_soft_max_ext(ctx0, kq, nullptr, kq_scale, 0.0f);
            }
            if (probe_obj || probe_deep) {
                // Column means over heads and query rows. The sum over
                // queries (kq's dim 1) is an outer product with ones, which
                // reads the probabilities once without a transposed copy of
                // the 577 x 577 x H matrix; the small [n_pos, H] result is
                // then summed over heads.
                ggml_tensor * ones = ggml_fill(ctx0, ggml_new_tensor_3d(ctx0, GGML_TYPE_F32, 1, n_pos, H), 1.0f);
                ggml_tensor * cs = ggml_out_prod(ctx0, kq, ones); // [n_pos, 1, H]
                cs = ggml_reshape_2d(ctx0, cs, n_pos, H);
                ggml_tensor * s = ggml_sum_rows(ctx0, ggml_cont(ctx0, ggml_transpose(ctx0, cs))); // [1, n_pos]
                s = ggml_scale(ctx0, ggml_reshape_1d(ctx0, s, n_pos), 1.0f / ((float) n_pos * (float) H));
                s = ggml_cont(ctx0, ggml_view_1d(ctx0, s, n_patches_, first * sizeof(float)));
                ggml_set_output(s);
                ggml_set_name(s, probe_obj ? "hp_object_scores" : "hp_deep_scores");
                if (probe_obj) out.object = s;
                if (probe_deep) out.deep = s;
                ggml_build_forward_expand(gf, s);
            }
            if (!o.flash_attn) {
                ggml_tensor * v = ggml_cont(ctx0, ggml_permute(ctx0, V, 1, 2, 0, 3));
                ggml_tensor * kqv = ggml_mul_mat(ctx0, v, kq); // [D, n_q, H]
                cur = ggml_permute(ctx0, kqv, 0, 2, 1, 3);
                cur = ggml_cont_2d(ctx0, cur, E, n_pos);
            } else {
                // The layer output takes the same flash-attention path as
                // the unprobed layers (and as llama.cpp's clip), so probing
                // adds the score side-branch without changing the result.
                ggml_tensor * v = ggml_permute(ctx0, V, 0, 2, 1, 3);
                ggml_tensor * kf = ggml_cast(ctx0, k, GGML_TYPE_F16);
                v = ggml_cast(ctx0, v, GGML_TYPE_F16);
                cur = ggml_flash_attn_ext(ctx0, q, kf, v, nullptr, kq_scale, 0.0f, 0.0f);
                ggml_flash_attn_ext_set_prec(cur, GGML_PREC_F32);
                cur = ggml_reshape_2d(ctx0, cur, cur->ne[0] * cur->ne[1], cur->ne[2] * cur->ne[3]);
            }
            cur = lin(ctx0, b.o_w, b.o_b, cur);
            x = ggml_add(ctx0, cur, x);
            if (o.head && probe_deep) break;
            x = mlp(ctx0, b, x);
        }
        ggml_tensor * patches = ggml_new_tensor_1d(ctx0, GGML_TYPE_I32, n_patches_);
        ggml_set_name(patches, "patches");
        ggml_set_input(patches);
        if (o.head) {
            // Everything after this point works row by row (build_tail), so
            // the patches' rows are taken now instead of after the projector.
            ggml_tensor * h = ggml_get_rows(ctx0, ggml_reshape_2d(ctx0, x, x->ne[0], x->ne[1]), patches);
            ggml_set_name(h, "hp_hidden");
            ggml_set_output(h);
            ggml_build_forward_expand(gf, h);
            out.hidden = h;
            return out;
        }
        if (post_w_) x = norm(ctx0, x, post_w_, post_b_);

        ggml_tensor * e = ggml_reshape_2d(ctx0, x, x->ne[0], x->ne[1]);
        e = project(ctx0, ggml_get_rows(ctx0, e, patches));
        ggml_set_name(e, "hp_embd");
        ggml_set_output(e);
        ggml_build_forward_expand(gf, e);
        out.embd = e;
        return out;
    }

    // The deep block's MLP, the post-norm and the projector: the ops build
    // runs after the deep block's attention, for n_rows rows of its output.
    bool splits() const override { return true; }
    // At CLIP's token counts (577 a view) ggml's CPU flash-attention kernel,
    // one query row at a time with a scalar exp per score, is slower than
    // the two batched matmuls, whose probabilities the probed blocks need
    // anyway: CLIP-L encodes about 9% faster without it (AMD EPYC znver3,
    // 2 threads; make bench's flash line). The matrix is 21 MiB a block.
    bool flash_on_cpu() const override { return false; }
    ggml_tensor * build_tail(ggml_context * ctx0, ggml_cgraph * gf, int n_rows) const override {
        ggml_tensor * x = ggml_new_tensor_2d(ctx0, GGML_TYPE_F32, n_embd_, n_rows);
        ggml_set_name(x, "tail_in");
        ggml_set_input(x);
        x = mlp(ctx0, blocks_[n_run_ - 1], x);
        if (post_w_) x = norm(ctx0, x, post_w_, post_b_);
        ggml_tensor * e = project(ctx0, x);
        ggml_set_name(e, "hp_embd");
        ggml_set_output(e);
        ggml_build_forward_expand(gf, e);
        return e;
    }

    void set_inputs(ggml_cgraph * gf, const float * img, int nx, int ny, const graph_opts &) const override {
        set_planar_image(gf, img, nx, ny);

        const int n_pos = n_patches_ + (has_cls_ ? 1 : 0);
        std::vector<int32_t> pos(n_pos);
        for (int i = 0; i < n_pos; i++) pos[i] = i;
        ggml_backend_tensor_set(ggml_graph_get_tensor(gf, "positions"), pos.data(), 0, pos.size() * sizeof(int32_t));
        // Rows the projector sees: the patches, skipping the class token's
        // row. In the llama.cpp layout this is rows 1..n (see bridge.h).
        std::vector<int32_t> rows(n_patches_);
        for (int i = 0; i < n_patches_; i++) rows[i] = i + (has_cls_ ? 1 : 0);
        ggml_backend_tensor_set(ggml_graph_get_tensor(gf, "patches"), rows.data(), 0, rows.size() * sizeof(int32_t));
    }

private:
    // mlp is a block's second half: x + MLP(LN2(x)).
    ggml_tensor * mlp(ggml_context * ctx0, const vit_block & b, ggml_tensor * x) const {
        ggml_tensor * cur = norm(ctx0, x, b.ln2_w, b.ln2_b);
        cur = ffn(ctx0, cur, act_, b.up_w, b.up_b, nullptr, nullptr, b.down_w, b.down_b);
        return ggml_add(ctx0, x, cur);
    }
    // project is LLaVA's MLP projector.
    ggml_tensor * project(ggml_context * ctx0, ggml_tensor * e) const {
        e = ggml_add(ctx0, ggml_mul_mat(ctx0, mm0_w_, e), mm0_b_);
        e = ggml_gelu(ctx0, e);
        return ggml_add(ctx0, ggml_mul_mat(ctx0, mm2_w_, e), mm2_b_);
    }
    ggml_tensor * norm(ggml_context * ctx0, ggml_tensor * x, ggml_tensor * w, ggml_tensor * b) const {
        return hp::norm(ctx0, x, w, b, eps_, false);
    }

    std::string path_;
    int image_size_ = 0, patch_size_ = 0, n_embd_ = 0, n_head_ = 0, n_ff_ = 0, n_block_ = 0, n_run_ = 0;
    int grid_ = 0, n_patches_ = 0, proj_dim_ = 0;
    float eps_ = 0;
    float mean_[3] = {0, 0, 0}, std_[3] = {1, 1, 1};
    ffn_act act_ = ffn_act::gelu_quick;
    bool has_cls_ = false;

    ggml_tensor *patch_w_ = nullptr, *patch_b_ = nullptr, *cls_ = nullptr, *pos_ = nullptr;
    ggml_tensor *pre_w_ = nullptr, *pre_b_ = nullptr, *post_w_ = nullptr, *post_b_ = nullptr;
    ggml_tensor *mm0_w_ = nullptr, *mm0_b_ = nullptr, *mm2_w_ = nullptr, *mm2_b_ = nullptr;
    std::vector<vit_block> blocks_;
};

} // namespace

std::unique_ptr<vision_family> make_llava_mlp(const gguf_file & f, int layout) {
    return std::make_unique<llava_mlp>(f, layout);
}

} // namespace hp
