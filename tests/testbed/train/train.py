#!/usr/bin/python3
"""Trains the testbed's miniature LLaVA-1.5 on the synthetic shapes task.

A development tool (`make testbed`), never needed to run or test the product.
Data comes from the Go generator (tests/testbed, streamed by `testbed stream`)
and token ids from llama.cpp's own tokenizer (`testbed tokens`), so the model
sees exactly the images and token sequences the pipeline gives it. The
forward pass is written the way llama.cpp computes it (CLIP blocks with
quick-GELU, tanh-GELU projector, Llama with interleaved-pair RoPE), so the
weights export without permutation (`testbed export`).

Recipe, two stages (`--vit-steps`): first the ViT, projector and LM train
end to end on the questions, with auxiliary scene-attribute losses: which
colour and shape covers each patch and its column, read linearly from the
ViT's output, and an alignment of the projected image tokens with the LM's
word embeddings (a covered patch scores its colour and shape words, the mean
image token the count's digit), the job LLaVA's first stage does with
captions. Then the ViT is frozen, as LLaVA trains on a frozen CLIP, and only
the projector and the LM learn, at about half the cost per step.
"""
import argparse
import json
import math
import os
import struct
import subprocess
import sys
import threading
import queue
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

COLORS = ["red", "green", "blue", "yellow", "purple", "orange"]
SHAPES = ["circle", "square", "triangle", "star"]
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]
IMG = 336
# Index distance between parallel generator processes: far more scenes than any run reads.
STREAM_STRIDE = 100_000_000


# ---------------------------------------------------------------- models
class ViTBlock(nn.Module):
    def __init__(s, e, h, f, eps):
        super().__init__()
        s.h = h
        s.ln1 = nn.LayerNorm(e, eps=eps)
        s.q, s.k, s.v, s.o = (nn.Linear(e, e) for _ in range(4))
        s.ln2 = nn.LayerNorm(e, eps=eps)
        s.fc1 = nn.Linear(e, f)
        s.fc2 = nn.Linear(f, e)

    def forward(s, x, want_attn=False):
        B, T, E = x.shape
        y = s.ln1(x)
        q = s.q(y).view(B, T, s.h, -1).transpose(1, 2)
        k = s.k(y).view(B, T, s.h, -1).transpose(1, 2)
        v = s.v(y).view(B, T, s.h, -1).transpose(1, 2)
        a = ((q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))).softmax(-1)
        z = a @ v
        attn = a if want_attn else None
        x = x + s.o(z.transpose(1, 2).reshape(B, T, E))
        y = s.fc1(s.ln2(x))
        y = y * torch.sigmoid(1.702 * y)  # quick-GELU (CLIP)
        return x + s.fc2(y), attn


class ViT(nn.Module):
    """CLIP ViT: class token first, learned positions, pre-LN, no post-LN."""

    def __init__(s, patch, e, h, f, depth, eps=1e-5):
        super().__init__()
        s.patch = patch
        s.grid = IMG // patch
        s.patch_embd = nn.Conv2d(3, e, patch, patch, bias=False)
        s.cls = nn.Parameter(torch.randn(e) * 0.02)
        s.pos = nn.Parameter(torch.randn(s.grid * s.grid + 1, e) * 0.02)
        s.pre_ln = nn.LayerNorm(e, eps=eps)
        s.blocks = nn.ModuleList(ViTBlock(e, h, f, eps) for _ in range(depth))

    def forward(s, img, attn_layers=()):
        x = s.patch_embd(img).flatten(2).transpose(1, 2)  # B, N, E (row-major)
        x = torch.cat([s.cls.expand(x.shape[0], 1, -1), x], 1) + s.pos
        x = s.pre_ln(x)
        attns = {}
        for i, b in enumerate(s.blocks):
            x, a = b(x, want_attn=(i + 1) in attn_layers)
            if a is not None:
                attns[i + 1] = a
        return x, attns


class Projector(nn.Module):
    def __init__(s, e, p):
        super().__init__()
        s.l0 = nn.Linear(e, p)
        s.l2 = nn.Linear(p, p)

    def forward(s, x):
        return s.l2(F.gelu(s.l0(x), approximate="tanh"))  # ggml_gelu is the tanh form


class RMSNorm(nn.Module):
    def __init__(s, e, eps):
        super().__init__()
        s.w = nn.Parameter(torch.ones(e))
        s.eps = eps

    def forward(s, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + s.eps) * s.w


def rope(x, pos, base):
    # llama.cpp's LLAMA_ROPE_TYPE_NORM: rotate adjacent pairs (x[2i], x[2i+1]).
    d = x.shape[-1]
    inv = base ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)
    ang = pos[:, None].float() * inv[None, :]  # T, d/2
    c, s = ang.cos()[:, None, :], ang.sin()[:, None, :]  # T, 1, d/2 against B, T, H, d/2
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x0 * c - x1 * s, x0 * s + x1 * c], -1).flatten(-2)


class LMBlock(nn.Module):
    def __init__(s, e, h, f, eps):
        super().__init__()
        s.h = h
        s.attn_norm = RMSNorm(e, eps)
        s.q, s.k, s.v, s.o = (nn.Linear(e, e, bias=False) for _ in range(4))
        s.ffn_norm = RMSNorm(e, eps)
        s.gate = nn.Linear(e, f, bias=False)
        s.up = nn.Linear(e, f, bias=False)
        s.down = nn.Linear(f, e, bias=False)

    def qkv(s, x, pos, base):
        B, T, E = x.shape
        y = s.attn_norm(x)
        q = rope(s.q(y).view(B, T, s.h, -1), pos, base).transpose(1, 2)
        k = rope(s.k(y).view(B, T, s.h, -1), pos, base).transpose(1, 2)
        v = s.v(y).view(B, T, s.h, -1).transpose(1, 2)
        return q, k, v

    def finish(s, x, z):
        B, T, E = x.shape
        x = x + s.o(z.transpose(1, 2).reshape(B, T, E))
        y = s.ffn_norm(x)
        return x + s.down(F.silu(s.gate(y)) * s.up(y))


def attend(q, k, v, masked):
    a = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
    return a.masked_fill(masked, float("-inf")).softmax(-1) @ v


class LM(nn.Module):
    def __init__(s, vocab, e, h, f, depth, eps=1e-5, base=10000.0):
        super().__init__()
        s.base = base
        s.tok = nn.Embedding(vocab, e)
        nn.init.normal_(s.tok.weight, std=0.02)
        s.blocks = nn.ModuleList(LMBlock(e, h, f, eps) for _ in range(depth))
        s.norm = RMSNorm(e, eps)
        s.out = nn.Linear(e, vocab, bias=False)
        nn.init.normal_(s.out.weight, std=0.02)

    def hidden(s, pre, suf, img_of):
        """Causal LM over sequences that share prefixes: pre [B, T0, E] is the
        text before the image and the image (one per image), suf [S, L, E] the
        text after it (right-padded), sequence i continuing prefix img_of[i].
        The prefix is computed once per image; the same as running every
        sequence whole. Returns the final hidden states of suf."""
        T0, L = pre.shape[1], suf.shape[1]
        pos_p, pos_s = torch.arange(T0), torch.arange(T0, T0 + L)
        mask_p = torch.ones(T0, T0, dtype=torch.bool).triu(1)
        mask_s = torch.cat([torch.zeros(L, T0, dtype=torch.bool), torch.ones(L, L, dtype=torch.bool).triu(1)], 1)
        xp, xs = pre, suf
        for li, b in enumerate(s.blocks):
            qp, kp, vp = b.qkv(xp, pos_p, s.base)
            qs, ks, vs = b.qkv(xs, pos_s, s.base)
            zs = attend(qs, torch.cat([kp[img_of], ks], 2), torch.cat([vp[img_of], vs], 2), mask_s)
            if li + 1 < len(s.blocks):  # the last block's prefix outputs are never read
                xp = b.finish(xp, attend(qp, kp, vp, mask_p))
            xs = b.finish(xs, zs)
        return s.norm(xs)


# ---------------------------------------------------------------- data
class Stream:
    """Reads scenes from `testbed stream` (one JSON line, then the RGB bytes).

    With several commands (one generator process each, over disjoint index
    ranges), scenes are taken from them in turn, so the order does not depend
    on which process is faster."""

    def __init__(s, cmds, depth=64):
        s.ps, s.qs = [], []
        for cmd in cmds:
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, bufsize=1 << 20)
            q = queue.Queue(depth)
            threading.Thread(target=s._run, args=(p, q), daemon=True).start()
            s.ps.append(p)
            s.qs.append(q)
        s.next = 0

    @staticmethod
    def _run(p, q):
        f = p.stdout
        n = IMG * IMG * 3
        while True:
            line = f.readline()
            if not line:
                q.put(None)
                return
            meta = json.loads(line)
            pix = f.read(n)
            q.put((meta, pix))

    def take(s, k):
        out = []
        for _ in range(k):
            item = s.qs[s.next].get()
            s.next = (s.next + 1) % len(s.qs)
            if item is None:
                raise RuntimeError("scene stream ended")
            out.append(item)
        return out

    def kill(s):
        for p in s.ps:
            p.kill()


def stream_cmds(cmd, n, offset=0):
    """n generator commands over disjoint index ranges (-start), or the
    command as it is for one and no offset."""
    if n <= 1 and offset == 0:
        return [cmd.split()]
    return [cmd.split() + ["-start", str(offset + i * STREAM_STRIDE)] for i in range(max(n, 1))]


def to_tensor(pix_list, dev="cpu"):
    # through numpy: PyTorch 2's default device would apply to a torch factory
    x = torch.from_numpy(np.frombuffer(bytearray(b"".join(pix_list)), dtype=np.uint8)).to(dev)
    x = x.view(len(pix_list), IMG, IMG, 3).permute(0, 3, 1, 2).float() / 255.0
    m = torch.tensor(MEAN, device=dev).view(1, 3, 1, 1)
    sd = torch.tensor(STD, device=dev).view(1, 3, 1, 1)
    return (x - m) / sd


def patch_labels(objs, grid, patch):
    """Colour and shape class (0 = background) of the object covering each
    patch centre, later objects over earlier ones (in float64, as plain
    Python floats, so the labels do not depend on the device)."""
    c = (torch.arange(grid, dtype=torch.float64, device="cpu") + 0.5) * patch
    py, px = c[:, None].expand(grid, grid), c[None, :].expand(grid, grid)
    col = torch.zeros(grid, grid, dtype=torch.long, device="cpu")
    shp = torch.zeros(grid, grid, dtype=torch.long, device="cpu")
    for o in objs:
        r = o["size"] / 2.0
        dx, dy = px - o["cx"], py - o["cy"]
        box = (dy.abs() <= r) & (dx.abs() <= r)
        d2 = dx * dx + dy * dy
        inside = {
            "square": box,
            "circle": d2 <= r * r,
            # apex at the top centre, base along the bottom edge
            "triangle": dx.abs() <= r * (dy + r) / (2 * r),
            "star": d2 <= (0.6 * r) ** 2,
        }[o["shape"]] & box
        col[inside] = COLORS.index(o["color"]) + 1
        shp[inside] = SHAPES.index(o["shape"]) + 1
    return col.flatten(), shp.flatten()


class Model(nn.Module):
    def __init__(s, a, vocab):
        super().__init__()
        s.vit = ViT(a.patch, a.vit_width, a.vit_heads, a.vit_ff, a.vit_depth)
        s.proj = Projector(a.vit_width, a.lm_width)
        s.lm = LM(vocab, a.lm_width, a.lm_heads, a.lm_ff, a.lm_depth)
        s.aux_col = nn.Linear(a.vit_width, len(COLORS) + 1)
        s.aux_shp = nn.Linear(a.vit_width, len(SHAPES) + 1)
        s.aux_x = nn.Linear(a.vit_width, 1)  # a patch's column, so "left of" can be read from features
        s.aux_glob = nn.Linear(a.vit_width, len(SHAPES) + len(COLORS) + 4)  # class token: present shapes/colours, count

    def image_embd(s, img):
        feats, _ = s.vit(img)
        patches = feats[:, 1:]  # LLaVA drops the class token
        return s.proj(patches), patches


def build_batch(model, embd, qas, toks, with_eos=True):
    """Sequences [BOS USER:] [image] [\\nQ ASSISTANT:] [answer] [EOS]: the
    prefixes (one per image) and the right-padded suffixes (one per question).

    Returns (prefix embeddings, suffix embeddings, image of each suffix,
    target (sequence, suffix position) pairs, target ids); the answer and EOS
    are the targets."""
    tok_w = model.lm.tok.weight
    B, _, E = embd.shape
    pre = torch.cat([tok_w[torch.tensor(toks["prefix"])].expand(B, -1, -1), embd], 1)
    tails, img_of, tgt_pos, tgt_ids = [], [], [], []
    for si, (q, a, bi) in enumerate(qas):
        suf = toks["suffix"][q]
        tail = suf + toks["answer"][a] + ([toks["eos"]] if with_eos else [])
        tails.append(tail[:-1])  # inputs; output j predicts tail[j + 1]
        img_of.append(bi)
        for j in range(len(suf) - 1, len(tail) - 1):
            tgt_pos.append((si, j))
            tgt_ids.append(tail[j + 1])
    L = max(len(t) for t in tails)
    ids = torch.tensor([t + [0] * (L - len(t)) for t in tails], dtype=torch.long)
    return pre, tok_w[ids], torch.tensor(img_of), tgt_pos, torch.tensor(tgt_ids)


def lm_logits(model, batch):
    pre, suf, img_of, tgt_pos, _ = batch
    h = model.lm.hidden(pre, suf, img_of)
    si = torch.tensor([p[0] for p in tgt_pos])
    pj = torch.tensor([p[1] for p in tgt_pos])
    return model.lm.out(h[si, pj])


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stream", required=True, help="command printing training scenes (JSON line + RGB)")
    ap.add_argument("--heldout", required=True, help="command printing validation scenes (a seed of their own: the eval uses another)")
    ap.add_argument("--tokens", required=True, help="token table JSON from `testbed tokens`")
    ap.add_argument("--out", required=True, help="output folder (weights.bin, loss.csv, config.json)")
    ap.add_argument("--steps", type=int, default=420, help="stage 2: projector and LM steps (ViT frozen)")
    ap.add_argument("--batch", type=int, default=16, help="images per step")
    ap.add_argument("--qper", type=int, default=5, help="questions per image per step (at most 5 exist)")
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--patch", type=int, default=21)
    ap.add_argument("--vit-width", type=int, default=128)
    ap.add_argument("--vit-heads", type=int, default=2)
    ap.add_argument("--vit-ff", type=int, default=512)
    ap.add_argument("--vit-depth", type=int, default=8)
    ap.add_argument("--lm-width", type=int, default=128)
    ap.add_argument("--lm-heads", type=int, default=2)
    ap.add_argument("--lm-ff", type=int, default=384)
    ap.add_argument("--lm-depth", type=int, default=3)
    ap.add_argument("--aux", type=float, default=0.5, help="weight of the per-patch loss")
    ap.add_argument("--vit-steps", type=int, default=950, help="stage 1: ViT steps on scene attributes")
    ap.add_argument("--vit-batch", type=int, default=8, help="stage 1: images per step")
    ap.add_argument("--init", default="", help="start from this model.pt")
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--bench", type=int, default=0, help="time this many steps and exit")
    ap.add_argument("--predict", type=int, default=0,
                    help="load OUT/model.pt and print greedy answers for this many --heldout scenes (parity checks)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, or auto (cuda where PyTorch sees a GPU)")
    ap.add_argument("--streams", type=int, default=1,
                    help="generator processes for --stream, over disjoint index ranges (-start i*1e8), read in turn")
    ap.add_argument("--time-budget", type=float, default=0,
                    help="seconds: measure the step times first, then size --vit-steps and --steps to fill this "
                         "(their values go into config.json, so a run with them repeats the schedule)")
    ap.add_argument("--stage1-share", type=float, default=0.55, help="with --time-budget: stage 1's share of it")
    ap.add_argument("--stream-offset", type=int, default=0,
                    help="first scene index of each generator (a run continuing another with --init reads new scenes)")
    ap.add_argument("--resave", action="store_true", help="write OUT/weights.bin from OUT/model.pt and exit")
    a = ap.parse_args()

    if a.device == "auto":
        a.device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(a.device)
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    # Every tensor the model code makes (positions, masks, indices) lives on
    # the training device; data and labels are made on the CPU and moved.
    if dev.type != "cpu":
        torch.set_default_device(dev)  # PyTorch 2; Debian's older CPU build needs none
    # Adam's second moments of rarely used vocabulary rows decay into
    # subnormal floats, which are ~100x slower on x86.
    torch.set_flush_denormal(True)
    toks = json.load(open(a.tokens))
    model = Model(a, toks["n_vocab"])
    grid = IMG // a.patch
    nparam = sum(p.numel() for p in model.parameters())
    print(f"params {nparam/1e6:.2f}M grid {grid}x{grid} device {dev}"
          f"{' (' + torch.cuda.get_device_name(dev) + ')' if dev.type == 'cuda' else ''}", flush=True)

    if a.init:
        model.load_state_dict(torch.load(a.init, map_location=dev))
    if a.resave:
        model.load_state_dict(torch.load(os.path.join(a.out, "model.pt"), map_location=dev))
        save(model, a, os.path.join(a.out, "weights.bin"))
        return
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (decay if p.dim() >= 2 and "pos" not in n else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0}],
                            lr=a.lr, betas=(0.9, 0.98), foreach=True)
    def lr_at(step, n):
        # per stage: linear warm-up over 1/30 of it, then cosine to 2%
        warm = max(1, n // 30)
        if step < warm:
            return a.lr * (step + 1) / warm
        t = (step - warm) / max(1, n - warm)
        return a.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t)))

    os.makedirs(a.out, exist_ok=True)
    if a.predict:
        model.load_state_dict(torch.load(os.path.join(a.out, "model.pt"), map_location=dev))
        model.eval()
        held = Stream([a.heldout.split()])
        scenes = held.take(a.predict)
        held.kill()
        answers = {v[0]: k for k, v in toks["answer"].items()}
        with torch.no_grad():
            for m, pix in scenes:
                embd, _ = model.image_embd(to_tensor([pix], dev))
                for qa in m["qas"]:
                    logit = lm_logits(model, build_batch(model, embd, [(qa["question"], qa["answer"], 0)], toks,
                                                         with_eos=False))[0]
                    v, ix = logit.topk(2)
                    top = int(ix[0])
                    print(json.dumps({"index": m["index"], "question": qa["question"],
                                      "answer": answers.get(top, f"<{top}>"), "top": top, "logit": round(float(v[0]), 4),
                                      "second": int(ix[1]), "logit2": round(float(v[1]), 4)}))
        return
    stream = Stream(stream_cmds(a.stream, a.streams, a.stream_offset))
    held = Stream([a.heldout.split()])
    held_set = held.take(100)
    held.kill()
    g = torch.Generator(device="cpu").manual_seed(a.seed)

    def evaluate():
        model.eval()
        right, tot, per = 0, 0, {}
        with torch.no_grad():
            for i in range(0, len(held_set), 20):
                chunk = held_set[i:i + 20]
                img = to_tensor([p for _, p in chunk], dev)
                embd, _ = model.image_embd(img)
                qas = [(qa["question"], qa["answer"], bi) for bi, (m, _) in enumerate(chunk) for qa in m["qas"]]
                tmpl = [qa["template"] for m, _ in chunk for qa in m["qas"]]
                batch = build_batch(model, embd, qas, toks, with_eos=False)
                logits = lm_logits(model, batch)
                # answers are one token: target k of sequence si is its answer
                for k, (si, _) in enumerate(batch[3]):
                    ok = int(logits[k].argmax()) == toks["answer"][qas[si][1]][0]
                    right += ok
                    tot += 1
                    r = per.setdefault(tmpl[si], [0, 0])
                    r[0] += ok
                    r[1] += 1
        model.train()
        return right / max(tot, 1), {k: round(v[0] / v[1], 3) for k, v in per.items()}

    tok_w = model.lm.tok.weight
    color_ids = torch.tensor([toks["answer"][c][0] for c in COLORS])
    shape_ids = torch.tensor([toks["answer"][x][0] for x in SHAPES])
    digit_ids = torch.tensor([toks["answer"][str(n)][0] for n in range(1, 5)])
    log = open(os.path.join(a.out, "loss.csv"), "w")
    log.write("step,seconds,stage,loss_qa,loss_aux,patch_shape_acc,heldout_acc\n")
    vit_only = [*model.vit.parameters(), *model.aux_col.parameters(), *model.aux_shp.parameters(),
                *model.aux_x.parameters(), *model.aux_glob.parameters()]
    def state_cpu():
        return {k: v.detach().cpu() for k, v in model.state_dict().items()}

    def train_step(stage1, batch):
        """Loss of one step (no optimizer step): (loss, qa loss, aux loss, patch-shape accuracy)."""
        img = to_tensor([p for _, p in batch], dev)
        labs = [patch_labels(m["objects"], grid, a.patch) for m, _ in batch]
        col = torch.stack([c for c, _ in labs]).flatten().to(dev)
        shp = torch.stack([s for _, s in labs]).flatten().to(dev)
        on = col > 0
        nobj = torch.tensor([len(m["objects"]) - 1 for m, _ in batch])
        lq = torch.zeros(())
        if stage1:
            # scene attributes from the ViT alone: per patch its colour,
            # shape and column; from the class token which colours and
            # shapes are present and how many objects
            feats, _ = model.vit(img)
            pf = feats[:, 1:].reshape(-1, feats.shape[-1])
            gx = (torch.arange(grid * grid) % grid).float() / (grid - 1)
            present = torch.zeros(len(batch), len(SHAPES) + len(COLORS), device="cpu")
            for bi, (m, _) in enumerate(batch):
                for o in m["objects"]:
                    present[bi, SHAPES.index(o["shape"])] = 1
                    present[bi, len(SHAPES) + COLORS.index(o["color"])] = 1
            present = present.to(dev)
            glob = model.aux_glob(feats[:, 0])
            ps = model.aux_shp(pf)
            la = (F.cross_entropy(model.aux_col(pf), col) + F.cross_entropy(ps, shp)
                  + F.mse_loss(model.aux_x(pf).squeeze(-1), gx.repeat(len(batch)))
                  + F.binary_cross_entropy_with_logits(glob[:, :present.shape[1]], present)
                  + F.cross_entropy(glob[:, present.shape[1]:], nobj))
            return la, lq, la, (ps.argmax(-1)[on] == shp[on]).float().mean().item()
        with torch.no_grad():
            feats, _ = model.vit(img)
        embd = model.proj(feats[:, 1:])
        qas = []
        for bi, (m, _) in enumerate(batch):
            cand = m["qas"]
            perm = torch.randperm(len(cand), generator=g, device="cpu")[:a.qper]
            for j in perm.tolist():
                qas.append((cand[j]["question"], cand[j]["answer"], bi))
        lb = build_batch(model, embd, qas, toks)
        lq = F.cross_entropy(lm_logits(model, lb), lb[4])
        # Alignment, as LLaVA's first stage aligns visual tokens with
        # word embeddings: a patch covered by an object, projected into
        # the LM, scores its colour and shape words highest among the
        # concept words' input embeddings; the mean image token scores
        # the object count's digit.
        ef = embd.reshape(-1, embd.shape[-1])
        la = (F.cross_entropy(ef[on] @ tok_w[color_ids].T, col[on] - 1)
              + F.cross_entropy(ef[on] @ tok_w[shape_ids].T, shp[on] - 1)
              + F.cross_entropy(embd.mean(1) @ tok_w[digit_ids].T, nobj))
        return lq + a.aux * la, lq, la, float("nan")

    t0 = time.time()
    if a.time_budget > 0:
        # Time both kinds of step on scenes read for it (never trained on;
        # no optimizer step), then size the stages to fill the budget.
        # The first steps drain what the generators queued meanwhile, which
        # would make the data look faster than it comes.
        per = []
        for stage1, bs, skip, timed in ((True, a.vit_batch, 8, 20), (False, a.batch, 2, 10)):
            for i in range(skip + timed):
                if i == skip:
                    tc = time.time()
                loss = train_step(stage1, stream.take(bs))[0]
                loss.backward()
                opt.zero_grad(set_to_none=True)
            per.append((time.time() - tc) / timed)
        # evaluations and checkpoints: about 3% of the time
        left = a.time_budget * 0.97 - (time.time() - t0)
        a.vit_steps = max(1, int(left * a.stage1_share / per[0]))
        a.steps = max(1, int(left * (1 - a.stage1_share) / per[1]))
        print(f"time budget {a.time_budget:.0f} s: {per[0]*1e3:.1f} ms/step stage 1, {per[1]*1e3:.1f} ms/step "
              f"stage 2 -> --vit-steps {a.vit_steps} --steps {a.steps}", flush=True)
        t0 = time.time()
    ema = None
    total = a.vit_steps + a.steps
    stopped = None
    for step in range(total if not a.bench else a.bench):
        if a.time_budget > 0 and time.time() - t0 > a.time_budget * 1.1:
            # the machine slowed down after the step times were measured:
            # keep what is trained rather than overrun whoever waits for it
            stopped = step
            acc_v, per = evaluate()
            print(f"time budget overrun: stopped at step {step} of {total}; heldout {acc_v:.4f} {per}", flush=True)
            break
        stage1 = step < a.vit_steps
        k, n = (step, a.vit_steps) if stage1 else (step - a.vit_steps, a.steps)
        for gr in opt.param_groups:
            gr["lr"] = lr_at(k, n)
        if step == a.vit_steps and not a.bench:
            # stage 2, as LLaVA trains on a frozen CLIP: only the projector
            # and the LM learn, and the ViT costs one forward pass
            for prm in vit_only:
                prm.requires_grad_(False)
            print(f"step {step}: ViT frozen", flush=True)
        loss, lq, la, shape_acc = train_step(stage1, stream.take(a.vit_batch if stage1 else a.batch))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([q for q in model.parameters() if q.requires_grad], 1.0)
        opt.step()
        cur = (lq.item(), la.item(), shape_acc)
        ema = cur if ema is None or step == a.vit_steps else tuple(0.95 * e + 0.05 * c for e, c in zip(ema, cur))
        if a.bench:
            if step == 1:
                tb = time.time()
            continue
        if step % 25 == 0 or step == total - 1:
            acc = ""
            if not stage1 and ((step - a.vit_steps) % a.eval_every == 0 or step == total - 1):
                acc_v, per = evaluate()
                acc = f"{acc_v:.4f}"
                print(f"  heldout {acc} {per}", flush=True)
                torch.save(state_cpu(), os.path.join(a.out, "model.pt"))  # resumable checkpoint
            el = time.time() - t0
            st = 1 if stage1 else 2
            print(f"step {step} stage {st} {el:.0f}s lr {lr_at(k, n):.2e} qa {ema[0]:.4f} aux {ema[1]:.4f} "
                  f"patch-shape {ema[2]:.3f}", flush=True)
            log.write(f"{step},{el:.1f},{st},{ema[0]:.5f},{ema[1]:.5f},{ema[2]:.4f},{acc}\n")
            log.flush()
    if a.bench:
        dt = (time.time() - tb) / (a.bench - 2)
        print(f"bench: {dt:.3f} s/step")
        stream.kill()
        return
    stream.kill()
    save(model, a, os.path.join(a.out, "weights.bin"))
    torch.save(state_cpu(), os.path.join(a.out, "model.pt"))
    json.dump(vars(a) | {"grid": grid, "params": nparam, "train_seconds": round(time.time() - t0, 1),
                         "stopped_at_step": stopped,
                         "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None},
              open(os.path.join(a.out, "config.json"), "w"), indent=2)


def save(model, a, path):
    """Writes the weights under their GGUF names: u64 header length, JSON
    header {name: [shape, offset]}, then little-endian float32 data (row-major,
    PyTorch's [out, in] order, which is GGUF's ne reversed)."""
    v, lm = model.vit, model.lm
    t = {
        "mm.0.weight": model.proj.l0.weight, "mm.0.bias": model.proj.l0.bias,
        "mm.2.weight": model.proj.l2.weight, "mm.2.bias": model.proj.l2.bias,
        "v.class_embd": v.cls, "v.patch_embd.weight": v.patch_embd.weight,
        "v.position_embd.weight": v.pos,
        "v.pre_ln.weight": v.pre_ln.weight, "v.pre_ln.bias": v.pre_ln.bias,
    }
    for i, b in enumerate(v.blocks):
        p = f"v.blk.{i}."
        t |= {
            p + "attn_q.weight": b.q.weight, p + "attn_q.bias": b.q.bias,
            p + "attn_k.weight": b.k.weight, p + "attn_k.bias": b.k.bias,
            p + "attn_v.weight": b.v.weight, p + "attn_v.bias": b.v.bias,
            p + "attn_out.weight": b.o.weight, p + "attn_out.bias": b.o.bias,
            p + "ln1.weight": b.ln1.weight, p + "ln1.bias": b.ln1.bias,
            p + "ln2.weight": b.ln2.weight, p + "ln2.bias": b.ln2.bias,
            # legacy LLaVA naming: fc1 is stored as ffn_down, fc2 as ffn_up
            p + "ffn_down.weight": b.fc1.weight, p + "ffn_down.bias": b.fc1.bias,
            p + "ffn_up.weight": b.fc2.weight, p + "ffn_up.bias": b.fc2.bias,
        }
    t["token_embd.weight"] = lm.tok.weight
    for i, b in enumerate(lm.blocks):
        p = f"blk.{i}."
        t |= {
            p + "attn_norm.weight": b.attn_norm.w, p + "attn_q.weight": b.q.weight,
            p + "attn_k.weight": b.k.weight, p + "attn_v.weight": b.v.weight,
            p + "attn_output.weight": b.o.weight, p + "ffn_norm.weight": b.ffn_norm.w,
            p + "ffn_gate.weight": b.gate.weight, p + "ffn_up.weight": b.up.weight,
            p + "ffn_down.weight": b.down.weight,
        }
    t["output_norm.weight"] = lm.norm.w
    t["output.weight"] = lm.out.weight
    header, blobs, off = {}, [], 0
    for name, w in t.items():
        arr = w.detach().float().cpu().contiguous()
        header[name] = [list(arr.shape), off]
        b = arr.numpy().astype("<f4").tobytes()
        blobs.append(b)
        off += len(b)
    hb = json.dumps({"tensors": header, "config": {k: v for k, v in vars(a).items()}}).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)


if __name__ == "__main__":
    main()
