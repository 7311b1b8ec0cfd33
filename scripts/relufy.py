#!/usr/bin/env python3
"""Make a ReLU-fied stories260K by distillation from the original.

Starts from a llama2.c checkpoint (stories260K, SwiGLU), replaces the FFN
activation by ReGLU (relu on the gate) or dReLU (relu on gate and up), and
continues training on sequences the original samples itself (no data set is
needed):
  0. a bank of sequences is sampled once from the original with a KV cache
     (most at temperature 1, some at 0.5, and some sampled for a few tokens
     and continued greedily, so the greedy paths the model is decoded along are
     covered), together with the original's log-probabilities at every position;
     with --split, each SwiGLU neuron first becomes two ReGLU neurons (the FFN
     width doubles; see split_neurons);
  1. optionally, layer by layer from the first: the layer's new FFN is fitted so
     that the layer ends where the original's does, on the residual stream the
     partly converted model produces (relative squared error), optionally with
     the sparsity penalty below;
  2. end to end on the bank: the KL divergence from the original's next-token
     distribution to the student's (optionally plus cross-entropy on the
     original's first choice), plus a sparsity penalty that pushes the gates
     outside each position's top share below zero (sparsity_penalty), whose
     weight a controller moves so that the share of exact zeros follows a
     target that rises slowly from the student's starting share.
The bank makes a step cost one forward and backward pass; sampling is paid once.

Needs PyTorch and numpy (Debian: python3-torch, python3-numpy); CPU only.

  nice -n 19 /usr/bin/python3 scripts/relufy.py /work/shared/data/stories260K.bin \
      --variant reglu --out examples/data/stories260K_relu.bin

Everything is seeded: the same arguments give the same checkpoint on the same
machine and PyTorch build. The run prints its loss curve, then the figures of
the model card: sparsity per layer over 256 greedily decoded positions,
teacher-forced top-1 agreement and KL against the original over the original's
128-position greedy sequence, and the student's 64 greedy tokens (a float
reference for the C++ engine, computed here by an independent implementation).
"""
import argparse
import hashlib
import math
import os
import struct
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one BLAS thread per torch thread
import numpy as np
import torch
import torch.nn.functional as F

BOS = 1


class Config:
    def __init__(self, header):
        self.dim, self.hidden, self.layers, self.heads, self.kv_heads, vocab, self.seq_len = header
        self.shared_classifier = vocab > 0
        self.vocab = abs(vocab)
        self.head_size = self.dim // self.heads
        self.kv_dim = self.dim * self.kv_heads // self.heads

    def header(self):
        vocab = self.vocab if self.shared_classifier else -self.vocab
        return (self.dim, self.hidden, self.layers, self.heads, self.kv_heads, vocab, self.seq_len)


def read_checkpoint(path):
    """Returns (config, dict of float32 tensors) from a llama2.c legacy (v0) file."""
    with open(path, "rb") as f:
        blob = f.read()
    cfg = Config(struct.unpack("<7i", blob[:28]))
    data = np.frombuffer(blob, dtype="<f4", offset=28)
    L, d, h, kv = cfg.layers, cfg.dim, cfg.hidden, cfg.kv_dim
    shapes = [
        ("emb", (cfg.vocab, d)),
        ("attn_norm", (L, d)),
        ("wq", (L, d, d)),
        ("wk", (L, kv, d)),
        ("wv", (L, kv, d)),
        ("wo", (L, d, d)),
        ("ffn_norm", (L, d)),
        ("w1", (L, h, d)),
        ("w2", (L, d, h)),
        ("w3", (L, h, d)),
        ("final_norm", (d,)),
        ("rope", (2, cfg.seq_len, cfg.head_size // 2)),
    ]
    if not cfg.shared_classifier:
        shapes.append(("cls", (cfg.vocab, d)))
    out, at = {}, 0
    for name, shape in shapes:
        n = int(np.prod(shape))
        if at + n > data.size:
            sys.exit(f"{path}: truncated at array {name}")
        out[name] = torch.tensor(data[at:at + n].reshape(shape).copy())
        at += n
    del out["rope"]
    return cfg, out


def write_checkpoint(path, cfg, w):
    """Writes llama2.c's legacy format; the RoPE tables are written as llama2.c's exporter did."""
    freqs = 1.0 / (10000.0 ** (torch.arange(0, cfg.head_size, 2)[: cfg.head_size // 2].double() / cfg.head_size))
    angles = torch.outer(torch.arange(cfg.seq_len).double(), freqs)
    arrays = [w["emb"], w["attn_norm"], w["wq"], w["wk"], w["wv"], w["wo"], w["ffn_norm"], w["w1"], w["w2"], w["w3"],
              w["final_norm"], torch.cos(angles), torch.sin(angles)]
    if not cfg.shared_classifier:
        arrays.append(w["cls"])
    with open(path, "wb") as f:
        f.write(struct.pack("<7i", *cfg.header()))
        for a in arrays:
            f.write(a.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes())


class Model(torch.nn.Module):
    """The llama2.c forward pass; `act` is 'silu' (SwiGLU), 'relu' (ReGLU) or 'drelu'."""

    def __init__(self, cfg, weights, act):
        super().__init__()
        self.cfg, self.act = cfg, act
        self.p = torch.nn.ParameterDict({k: torch.nn.Parameter(v.clone()) for k, v in weights.items()})
        hs = cfg.head_size
        freqs = 1.0 / (10000.0 ** (torch.arange(0, hs, 2).float() / hs))
        angles = torch.outer(torch.arange(cfg.seq_len).float(), freqs)
        self.register_buffer("cos", torch.cos(angles), persistent=False)
        self.register_buffer("sin", torch.sin(angles), persistent=False)

    @staticmethod
    def rmsnorm(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w

    def rope(self, x, pos):
        # x: [B, T, H, hs]; rotates each pair (2i, 2i+1) by pos * 10000^(-2i / hs)
        cos, sin = self.cos[pos][None, :, None, :], self.sin[pos][None, :, None, :]
        a, b = x[..., 0::2], x[..., 1::2]
        return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)

    def ffn_hidden(self, xb, l, gates=None):
        g, u = xb @ self.p["w1"][l].T, xb @ self.p["w3"][l].T
        if gates is not None:
            gates.append((g, u))
        if self.act == "silu":
            return F.silu(g) * u
        if self.act == "relu":
            return F.relu(g) * u
        return F.relu(g) * F.relu(u)

    def forward(self, tokens, start=0, cache=None, collect=None, trace=None, gates=None):
        """tokens [B, T] at positions start..start+T-1. `cache` (list of [k, v] per layer)
        is extended in place when given. `collect` gathers each layer's FFN hidden vector,
        `trace` each layer's residual stream before and after its FFN, `gates` each layer's
        gate and up pre-activations."""
        cfg, p = self.cfg, self.p
        B, T = tokens.shape
        pos = torch.arange(start, start + T)
        x = p["emb"][tokens]
        rep = cfg.heads // cfg.kv_heads
        for l in range(cfg.layers):
            xb = self.rmsnorm(x, p["attn_norm"][l])
            q = self.rope((xb @ p["wq"][l].T).view(B, T, cfg.heads, cfg.head_size), pos)
            k = self.rope((xb @ p["wk"][l].T).view(B, T, cfg.kv_heads, cfg.head_size), pos)
            v = (xb @ p["wv"][l].T).view(B, T, cfg.kv_heads, cfg.head_size)
            if cache is not None:
                if len(cache) <= l:
                    cache.append([k, v])
                else:
                    cache[l][0] = torch.cat((cache[l][0], k), 1)
                    cache[l][1] = torch.cat((cache[l][1], v), 1)
                k, v = cache[l]
            S = k.shape[1]
            k = k.repeat_interleave(rep, dim=2)
            v = v.repeat_interleave(rep, dim=2)
            att = torch.einsum("bthd,bshd->bhts", q, k) / math.sqrt(cfg.head_size)
            mask = torch.arange(S)[None, :] > (pos[:, None])  # key after query: hidden
            att = att.masked_fill(mask[None, None], float("-inf")).softmax(-1)
            o = torch.einsum("bhts,bshd->bthd", att, v).reshape(B, T, cfg.dim)
            x = x + o @ p["wo"][l].T
            h = self.ffn_hidden(self.rmsnorm(x, p["ffn_norm"][l]), l, gates)
            if collect is not None:
                collect.append(h)
            mid = x
            x = x + h @ p["w2"][l].T
            if trace is not None:
                trace.append((mid, x))
        x = self.rmsnorm(x, p["final_norm"])
        return x @ (p["emb"] if cfg.shared_classifier else p["cls"]).T


@torch.no_grad()
def greedy(model, length):
    seq = torch.tensor([[BOS]])
    cache = []
    for t in range(length - 1):
        logits = model(seq[:, -1:], start=t, cache=cache)[:, -1]
        seq = torch.cat((seq, logits.argmax(-1, keepdim=True)), 1)
    return seq[0].tolist()


@torch.no_grad()
def residuals(model, tokens, layer):
    """`layer`'s residual stream before and after its FFN at every position of `tokens`
    (two [N, dim] arrays)."""
    mids, outs = [], []
    for chunk in tokens.split(32):
        trace = []
        model(chunk, trace=trace)
        mids.append(trace[layer][0].reshape(-1, model.cfg.dim))
        outs.append(trace[layer][1].reshape(-1, model.cfg.dim))
    return torch.cat(mids), torch.cat(outs)


def fit_layer(teacher, student, layer, tokens, steps, lr, weight, target_zeros, batch, gen, log_every):
    """Phase 1 for one layer: fits the student's FFN so that, on the student's own residual
    stream (which earlier converted layers have moved), the layer ends where the teacher's
    does; so each layer also repairs the drift of those before it. The sparsity penalty's weight
    starts at `weight` (0: no penalty) and follows a controller towards the target share of exact zeros (up while the batch
    has fewer, down while it has more); returns its final value."""
    mid, _ = residuals(student, tokens, layer)
    _, want = residuals(teacher, tokens, layer)
    with torch.no_grad():
        x = student.rmsnorm(mid, student.p["ffn_norm"][layer])
        target = want - mid
        scale = target.pow(2).mean()
    params = [student.p[k] for k in ("w1", "w3", "w2")]
    opt = torch.optim.Adam(params, lr=lr)
    for step in range(1, steps + 1):
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        idx = torch.randint(0, x.shape[0], (batch,), generator=gen)
        gates = []
        h = student.ffn_hidden(x[idx], layer, gates)
        y = h @ student.p["w2"][layer].T
        err = (y - target[idx]).pow(2).mean() / scale
        loss = err + sparsity_penalty(gates, [weight], student.act, 1 - target_zeros)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for prm in params:  # only this layer's slice moves
            mask = torch.zeros_like(prm.grad)
            mask[layer] = 1
            prm.grad.mul_(mask)
        opt.step()
        zeros = (h == 0).float().mean().item()
        weight *= math.exp(0.5 * (target_zeros - zeros))  # about x1.005 per point of sparsity missing
        if step % log_every == 0 or step == steps:
            print(f"  layer {layer} step {step:4d}  rel. error {err.item():.4f}  zeros {zeros:.3f}  penalty weight {weight:.3f}",
                  flush=True)
    return weight


def split_neurons(cfg, w, teacher):
    """Doubles the FFN width: each SwiGLU neuron (g, u, d) becomes two ReGLU neurons
    (g, a u, d) and (-g, b u, d), so that a relu(g) u + b relu(-g) u stands for
    silu(g) u. Without biases that two-piece line through the origin is the closest a
    ReLU of g can come to SiLU; a and b are fitted per layer by least squares over the
    gate values of the original's greedy sequence. Exactly one of the two is nonzero
    for any g != 0, so the split model starts at 50% exact zeros, and reads per token
    what the original did when it skips them."""
    new = Config(cfg.header())
    new.hidden = 2 * cfg.hidden
    with torch.no_grad():
        gates = []
        teacher(torch.tensor([greedy(teacher, 128)]), gates=gates)
    w = dict(w)
    w1, w2, w3 = [], [], []
    for l in range(cfg.layers):
        g = gates[l][0].flatten()
        pos, neg = g[g > 0], g[g < 0]
        a = (F.silu(pos) * pos).sum() / pos.pow(2).sum()
        b = (F.silu(neg) * -neg).sum() / neg.pow(2).sum()
        print(f"  layer {l}: silu(g) ~ {a:.3f} relu(g) + {b:.3f} relu(-g)")
        w1.append(torch.cat([w["w1"][l], -w["w1"][l]]))
        w3.append(torch.cat([a * w["w3"][l], b * w["w3"][l]]))
        w2.append(torch.cat([w["w2"][l], w["w2"][l]], dim=1))
    w["w1"], w["w2"], w["w3"] = torch.stack(w1), torch.stack(w2), torch.stack(w3)
    return new, w


def sparsity_penalty(gates, weights, variant, keep):
    """Per layer: how far the gates outside each position's top `keep` share are above 0,
    in units of each gate's own spread (so that scaling a gate's weights down cannot dodge
    it), times the layer's weight. Only the neurons that should be zero are pushed, and only
    towards 0: the kept ones keep their values, where an L1 penalty on every activation
    would shrink them too. For dReLU a neuron fires when gate and up are both positive, so
    the smaller of the two (in units of its spread) stands for it."""
    terms = []
    def spread(t):  # per neuron (last dimension), over every position
        return t.detach().pow(2).reshape(-1, t.shape[-1]).mean(0).sqrt() + 1e-6

    for w, (g, u) in zip(weights, gates):
        z = g / spread(g)
        if variant == "drelu":
            z = torch.minimum(z, u / spread(u))
        k = max(1, round(keep * z.shape[-1]))
        cut = z.detach().topk(k, dim=-1).values[..., -1:]
        terms.append(w * (F.relu(z) * (z < cut)).mean())
    return torch.stack(terms).sum()


def kl_rows(teacher_logits, student_logits):
    """KL(teacher || student) per row, in nats."""
    lt, ls = F.log_softmax(teacher_logits, -1), F.log_softmax(student_logits, -1)
    return (lt.exp() * (lt - ls)).sum(-1)


@torch.no_grad()
def evaluate(teacher, student, positions=128, decoded=256):
    """Agreement with the teacher on its greedy sequence, and the student's sparsity."""
    ref = torch.tensor([greedy(teacher, positions)])
    lt, ls = teacher(ref), student(ref)
    top1 = (lt.argmax(-1) == ls.argmax(-1)).float().mean().item()
    kl = kl_rows(lt, ls).mean().item()
    own = torch.tensor([greedy(student, decoded)])
    hidden = []
    student(own, collect=hidden)
    per_layer = [(h == 0).float().mean().item() for h in hidden]
    return top1, kl, per_layer


@torch.no_grad()
def sample_bank(model, count, length, gen, greedy_share, cool_share, chunk=128):
    """`count` sequences of `length` tokens from BOS, sampled by `model` with a KV cache.
    A `cool_share` of them is sampled at temperature 0.5; a `greedy_share` is sampled at
    temperature 1 up to a random position in [4, 32] and continued greedily from there, so
    the bank covers the greedy paths the model is decoded along; the rest at temperature 1."""
    out = []
    for at in range(0, count, chunk):
        b = min(chunk, count - at)
        u = torch.rand(b, generator=gen)
        temp = torch.where(u < cool_share, 0.5, 1.0)[:, None]
        greedy_from = torch.where(u >= 1 - greedy_share, torch.randint(4, 33, (b,), generator=gen), length)
        seq = torch.full((b, 1), BOS, dtype=torch.long)
        cache = []
        for t in range(length - 1):
            logits = model(seq[:, -1:], start=t, cache=cache)[:, -1]
            drawn = torch.multinomial(torch.softmax(logits / temp, -1), 1, generator=gen)[:, 0]
            nxt = torch.where(greedy_from <= t + 1, logits.argmax(-1), drawn)
            seq = torch.cat((seq, nxt[:, None]), 1)
        out.append(seq)
    return torch.cat(out)


@torch.no_grad()
def teacher_log_probs(model, tokens, chunk=16):
    """log-softmax of `model`'s logits at every position of `tokens`, stored as float16."""
    return torch.cat([F.log_softmax(model(c), -1).half() for c in tokens.split(chunk)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint", help="the original llama2.c checkpoint (stories260K.bin)")
    ap.add_argument("--variant", choices=["reglu", "drelu"], default="reglu")
    ap.add_argument("--split", action="store_true",
                    help="reglu: two ReLU neurons per SwiGLU neuron (doubles the FFN width; see split_neurons)")
    ap.add_argument("--layer-steps", type=int, default=0, help="phase 1 steps per layer (0: no phase 1)")
    ap.add_argument("--layer-lr", type=float, default=3e-3)
    ap.add_argument("--layer-sequences", type=int, default=128, help="phase 1: sequences of the bank it fits on")
    ap.add_argument("--layer-penalty", type=float, default=0.0,
                    help="phase 1: initial weight of the sparsity penalty (0: none)")
    ap.add_argument("--layer-zeros", type=float, default=0.85, help="phase 1: share of exact zeros it aims at")
    ap.add_argument("--sequences", type=int, default=1536, help="sequences in the bank sampled from the original")
    ap.add_argument("--greedy-share", type=float, default=0.4, help="share of the bank continued greedily")
    ap.add_argument("--cool-share", type=float, default=0.2, help="share of the bank sampled at temperature 0.5")
    ap.add_argument("--steps", type=int, default=1500, help="end-to-end steps")
    ap.add_argument("--batch", type=int, default=8, help="sequences per step")
    ap.add_argument("--length", type=int, default=128, help="tokens per sampled sequence")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--penalty", type=float, default=0.01,
                    help="initial weight of each layer's sparsity penalty (0: none)")
    ap.add_argument("--gain", type=float, default=1.0,
                    help="controller: the log of a penalty weight moves by gain x missing share")
    ap.add_argument("--target-zeros", type=float, default=0.85, help="share of exact zeros the penalty aims at")
    ap.add_argument("--ramp", type=float, default=0.5, help="share of the steps over which the target rises")
    ap.add_argument("--shared-penalty", action="store_true",
                    help="one penalty weight for all layers, held to the mean zeros")
    ap.add_argument("--top1-weight", type=float, default=0.0, help="weight of cross-entropy on the original's top-1")
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", help="where to write the ReLU-fied checkpoint")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.seed)

    cfg, weights = read_checkpoint(args.checkpoint)
    teacher = Model(cfg, weights, "silu").eval()
    for prm in teacher.parameters():
        prm.requires_grad_(False)
    print(f"original: dim {cfg.dim}, hidden {cfg.hidden}, layers {cfg.layers}, vocab {cfg.vocab}")
    print("original greedy:", " ".join(map(str, greedy(teacher, 17)[1:])))

    act = "relu" if args.variant == "reglu" else "drelu"
    if args.split:
        if args.variant != "reglu":
            sys.exit("--split is for --variant reglu")
        print("split: each SwiGLU neuron into two ReGLU neurons")
        student_cfg, student_weights = split_neurons(cfg, weights, teacher)
    else:
        student_cfg, student_weights = cfg, weights
    student = Model(student_cfg, student_weights, act)
    top1, kl, sp = evaluate(teacher, student)
    print(f"before training ({args.variant}): top-1 {top1:.3f}, KL {kl:.4f}, sparsity {np.mean(sp):.3f}")

    start, cpu_start = time.time(), time.process_time()

    def clock():  # wall time, and this process's CPU time (the machine may be shared)
        return f"({time.time() - start:.0f} s, CPU {time.process_time() - cpu_start:.0f} s)"

    bank = sample_bank(teacher, args.sequences, args.length, gen, args.greedy_share, args.cool_share)
    held_out = sample_bank(teacher, 16, args.length, gen, 0.0, 0.0)  # temperature 1, never trained on
    bank_lp, held_lp = teacher_log_probs(teacher, bank), teacher_log_probs(teacher, held_out)
    print(f"bank: {args.sequences} sequences of {args.length} tokens with the original's log-probabilities"
          f" {clock()}", flush=True)

    def report(tag):
        top1, kl, sp = evaluate(teacher, student)
        with torch.no_grad():
            ls = student(held_out)
        h_top1 = (held_lp.float().argmax(-1) == ls.argmax(-1)).float().mean().item()
        h_kl = kl_rows(held_lp.float(), ls).mean().item()
        print(f"  {tag}: greedy path top-1 {top1:.3f} KL {kl:.4f} | held-out top-1 {h_top1:.3f} KL {h_kl:.4f}"
              f" | zeros {np.mean(sp):.3f}  {clock()}", flush=True)
        return top1, kl, sp

    if args.layer_steps > 0:
        print(f"phase 1: layer by layer, {args.layer_steps} steps each")
        for layer in range(cfg.layers):
            fit_layer(teacher, student, layer, bank[:args.layer_sequences], args.layer_steps, args.layer_lr, args.layer_penalty, args.layer_zeros, 1024,
                      gen, max(1, args.layer_steps // 4))
        report("after phase 1")

    print(f"end to end: {args.steps} steps of {args.batch} sequences; the zeros target rises to"
          f" {args.target_zeros} over the first {args.ramp:.0%} of them")
    with torch.no_grad():
        hidden = []
        student(bank[:args.batch * 4], collect=hidden)
        first = float(np.mean([(h == 0).float().mean().item() for h in hidden]))
    penalty_weights = [args.penalty] * cfg.layers
    opt = torch.optim.AdamW(student.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.0)
    warmup = max(1, args.steps // 30)
    ramp_steps = max(1, int(args.ramp * args.steps))
    for step in range(1, args.steps + 1):
        lr = args.lr * min(1.0, step / warmup) * max(0.05, 0.5 * (1 + math.cos(math.pi * step / args.steps)))
        for group in opt.param_groups:
            group["lr"] = lr
        target_zeros = first + (args.target_zeros - first) * min(1.0, step / ramp_steps)
        idx = torch.randint(0, bank.shape[0], (args.batch,), generator=gen)
        hidden, gates = [], []
        logits = student(bank[idx], collect=hidden, gates=gates)
        want = bank_lp[idx].float()
        kl = kl_rows(want, logits).mean()
        penalty = sparsity_penalty(gates, penalty_weights, act, 1 - target_zeros)
        loss = kl + penalty
        if args.top1_weight > 0:  # the original's first choice, as a hard label: top-1 agreement is a bar
            loss = loss + args.top1_weight * F.cross_entropy(logits.flatten(0, 1), want.argmax(-1).flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        with torch.no_grad():  # per layer: penalty weight up while the batch has too few zeros, down while too many
            zeros = [(h == 0).float().mean().item() for h in hidden]
            if args.shared_penalty:  # one weight, held to the mean: layers where zeros come cheap take more of them
                zeros_seen = [float(np.mean(zeros))] * len(zeros)
            else:
                zeros_seen = zeros
            floor = min(args.penalty, 1e-5)  # a weight that starts at 0 stays 0
            penalty_weights = [min(10.0, max(floor, w * math.exp(args.gain * (target_zeros - z))))
                               for w, z in zip(penalty_weights, zeros_seen)]
        if step % 25 == 0 or step == 1:
            print(f"step {step:5d}  lr {lr:.2e}  KL {kl.item():.4f}  penalty {penalty.item():.4f}  zeros {np.mean(zeros):.3f} ["
                  + " ".join(f"{z:.2f}" for z in zeros) + "]"
                  f" (target {target_zeros:.3f})  {clock()}", flush=True)
        if step % args.eval_every == 0 and step < args.steps:
            report(f"step {step}")

    student.eval()
    top1, kl, sp = report("final")
    print(f"\nfinal ({args.variant}, {clock()}):")
    print(f"  teacher-forced on the original's greedy sequence (128 positions): top-1 {top1:.3f}, KL {kl:.4f}")
    print("  exact zeros per layer over 256 greedily decoded positions: "
          + " ".join(f"{s:.3f}" for s in sp) + f"  (mean {np.mean(sp):.3f})")
    tokens = " ".join(map(str, greedy(student, 65)[1:]))
    print("  greedy tokens (64):", tokens)
    if args.out:
        write_checkpoint(args.out, student.cfg, {k: v.detach() for k, v in student.p.items()})
        with open(os.path.splitext(args.out)[0] + ".tokens.txt", "w") as f:  # the engine's float reference
            f.write(tokens + "\n")
        with open(args.out, "rb") as f:
            print(f"  wrote {args.out}, sha256 {hashlib.sha256(f.read()).hexdigest()}")


if __name__ == "__main__":
    main()
