#!/usr/bin/env python3
"""Make a ReLU-fied stories260K by distillation from the original.

Starts from a llama2.c checkpoint (stories260K, SwiGLU), replaces the FFN
activation by ReGLU (relu on the gate) or dReLU (relu on gate and up), and
continues training on sequences the original samples itself (no data set is
needed), in two phases:
  1. layer by layer, from the first: the layer's new FFN is fitted to the
     original FFN's output on the inputs the partly converted model feeds it
     (relative squared error), with an L1 penalty on the FFN activations that
     pushes the share of exact zeros up, as ProSparse does;
  2. end to end: the KL divergence from the original's next-token distribution
     to the student's, on fresh samples, keeping the L1 penalty.
Phase 1 is cheap (a regression per layer, no attention); phase 2 repairs what
the layer-local fits cannot see.

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

    def ffn_hidden(self, xb, l):
        g, u = xb @ self.p["w1"][l].T, xb @ self.p["w3"][l].T
        if self.act == "silu":
            return F.silu(g) * u
        if self.act == "relu":
            return F.relu(g) * u
        return F.relu(g) * F.relu(u)

    def forward(self, tokens, start=0, cache=None, collect=None):
        """tokens [B, T] at positions start..start+T-1. `cache` (list of [k, v] per layer)
        is extended in place when given. `collect` gathers each layer's FFN hidden vector."""
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
            h = self.ffn_hidden(self.rmsnorm(x, p["ffn_norm"][l]), l)
            if collect is not None:
                collect.append(h)
            x = x + h @ p["w2"][l].T
        x = self.rmsnorm(x, p["final_norm"])
        return x @ (p["emb"] if cfg.shared_classifier else p["cls"]).T


@torch.no_grad()
def sample(model, batch, length, gen, temperature=1.0):
    """`batch` sequences of `length` tokens from BOS, sampled by `model` with a KV cache."""
    seq = torch.full((batch, 1), BOS, dtype=torch.long)
    cache = []
    for t in range(length - 1):
        logits = model(seq[:, -1:], start=t, cache=cache)[:, -1]
        probs = torch.softmax(logits / temperature, -1)
        seq = torch.cat((seq, torch.multinomial(probs, 1, generator=gen)), 1)
    return seq


@torch.no_grad()
def greedy(model, length):
    seq = torch.tensor([[BOS]])
    cache = []
    for t in range(length - 1):
        logits = model(seq[:, -1:], start=t, cache=cache)[:, -1]
        seq = torch.cat((seq, logits.argmax(-1, keepdim=True)), 1)
    return seq[0].tolist()


@torch.no_grad()
def ffn_inputs(model, tokens, layer):
    """The normed FFN input of `layer` for every position of `tokens` (rows of [N, dim])."""
    captured = []
    original = model.ffn_hidden

    def hook(xb, l):
        if l == layer:
            captured.append(xb.reshape(-1, xb.shape[-1]).clone())
        return original(xb, l)

    model.ffn_hidden = hook
    try:
        for chunk in tokens.split(32):
            model(chunk)
    finally:
        model.ffn_hidden = original
    return torch.cat(captured)


def fit_layer(teacher, student, layer, x, steps, lr, l1, target_zeros, batch, gen, log_every):
    """Phase 1 for one layer: fits the student's FFN to the teacher's on inputs x. The L1
    weight starts at l1 and follows a controller towards the target share of exact zeros
    (up while the batch has fewer, down while it has more); returns its final value."""
    with torch.no_grad():
        target = teacher.ffn_hidden(x, layer) @ teacher.p["w2"][layer].T
        scale = target.pow(2).mean()
    params = [student.p[k] for k in ("w1", "w3", "w2")]
    opt = torch.optim.Adam(params, lr=lr)
    for step in range(1, steps + 1):
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        idx = torch.randint(0, x.shape[0], (batch,), generator=gen)
        h = student.ffn_hidden(x[idx], layer)
        y = h @ student.p["w2"][layer].T
        err = (y - target[idx]).pow(2).mean() / scale
        loss = err + l1 * h.abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for prm in params:  # only this layer's slice moves
            mask = torch.zeros_like(prm.grad)
            mask[layer] = 1
            prm.grad.mul_(mask)
        opt.step()
        zeros = (h == 0).float().mean().item()
        l1 *= math.exp(0.5 * (target_zeros - zeros))  # about x1.005 per point of sparsity missing
        if step % log_every == 0 or step == steps:
            print(f"  layer {layer} step {step:4d}  rel. error {err.item():.4f}  zeros {zeros:.3f}  L1 weight {l1:.3f}",
                  flush=True)
    return l1


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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint", help="the original llama2.c checkpoint (stories260K.bin)")
    ap.add_argument("--variant", choices=["reglu", "drelu"], default="reglu")
    ap.add_argument("--layer-steps", type=int, default=600, help="phase 1 steps per layer")
    ap.add_argument("--layer-lr", type=float, default=3e-3)
    ap.add_argument("--sequences", type=int, default=256, help="phase 1: sampled sequences")
    ap.add_argument("--steps", type=int, default=40, help="phase 2 (end-to-end) steps")
    ap.add_argument("--batch", type=int, default=8, help="sequences per step")
    ap.add_argument("--length", type=int, default=128, help="tokens per sampled sequence")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--l1", type=float, default=0.1, help="initial L1 weight on the FFN activations")
    ap.add_argument("--l1-phase2", type=float, default=0.05, help="phase 2 starts at this share of phase 1's L1 weights")
    ap.add_argument("--target-zeros", type=float, default=0.86, help="share of exact zeros the L1 weight aims at")
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
    student = Model(cfg, weights, act)
    top1, kl, sp = evaluate(teacher, student)
    print(f"before training ({args.variant}): top-1 {top1:.3f}, KL {kl:.4f}, sparsity {np.mean(sp):.3f}")

    start = time.time()
    print(f"phase 1: layer by layer, {args.sequences} sampled sequences of {args.length} tokens")
    pool = sample(teacher, args.sequences, args.length, gen)
    l1_weights = []
    for layer in range(cfg.layers):
        x = ffn_inputs(student, pool, layer)
        l1_weights.append(fit_layer(teacher, student, layer, x, args.layer_steps, args.layer_lr, args.l1,
                                    args.target_zeros, 1024, gen, max(1, args.layer_steps // 4)))
    top1, kl, sp = evaluate(teacher, student)
    print(f"after phase 1 ({time.time() - start:.0f} s): top-1 {top1:.3f}, KL {kl:.4f}, sparsity {np.mean(sp):.3f}",
          flush=True)

    print(f"phase 2: end to end, {args.steps} steps of {args.batch} sequences")
    l1_weights = [w * args.l1_phase2 for w in l1_weights]
    opt = torch.optim.AdamW(student.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.0)
    warmup = max(1, args.steps // 20)
    pool, pool_at = None, 0
    for step in range(1, args.steps + 1):
        lr = args.lr * min(1.0, step / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / args.steps)))
        lr = max(lr, args.lr * 0.05)
        for group in opt.param_groups:
            group["lr"] = lr
        if pool is None or pool_at + args.batch > pool.shape[0]:
            pool, pool_at = sample(teacher, args.batch * 8, args.length, gen), 0
        batch = pool[pool_at:pool_at + args.batch]
        pool_at += args.batch
        with torch.no_grad():
            target = teacher(batch)
        hidden = []
        logits = student(batch, collect=hidden)
        kl = kl_rows(target, logits).mean()
        l1 = torch.stack([w * h.abs().mean() for w, h in zip(l1_weights, hidden)]).sum()
        loss = kl + l1
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        with torch.no_grad():  # the same controller as phase 1, per layer, on the KL's scale
            for l, h in enumerate(hidden):
                l1_weights[l] *= math.exp(0.5 * (args.target_zeros - (h == 0).float().mean().item()))
        if step % 25 == 0 or step == 1:
            zeros = torch.stack([(h == 0).float().mean() for h in hidden]).mean().item()
            print(f"step {step:5d}  lr {lr:.2e}  KL {kl.item():.4f}  L1 {l1.item():.4f}  zeros {zeros:.3f}"
                  f"  ({time.time() - start:.0f} s)", flush=True)
        if step % 100 == 0 and step < args.steps:
            top1, kl_e, sp = evaluate(teacher, student)
            print(f"  eval: top-1 {top1:.3f}  KL {kl_e:.4f}  sparsity {np.mean(sp):.3f}", flush=True)

    student.eval()
    top1, kl, sp = evaluate(teacher, student)
    print(f"\nfinal ({args.variant}, {time.time() - start:.0f} s):")
    print(f"  teacher-forced on the original's greedy sequence (128 positions): top-1 {top1:.3f}, KL {kl:.4f}")
    print("  exact zeros per layer over 256 greedily decoded positions: "
          + " ".join(f"{s:.3f}" for s in sp) + f"  (mean {np.mean(sp):.3f})")
    tokens = " ".join(map(str, greedy(student, 65)[1:]))
    print("  greedy tokens (64):", tokens)
    if args.out:
        write_checkpoint(args.out, cfg, {k: v.detach() for k, v in student.p.items()})
        with open(os.path.splitext(args.out)[0] + ".tokens.txt", "w") as f:  # the engine's float reference
            f.write(tokens + "\n")
        with open(args.out, "rb") as f:
            print(f"  wrote {args.out}, sha256 {hashlib.sha256(f.read()).hexdigest()}")


if __name__ == "__main__":
    main()
