"""The peers of `spar lm bench`, on the same workloads: PyTorch CPU and llama-cpp-python.

    .venv-lm/bin/python scripts/lm/bench_torch.py --threads 2 [--steps 10] [--gguf FILE]

Prints JSON: train_A / train_B (median ms of a training step: forward, cross-entropy,
backward, AdamW; same model as spar's bench: Llama with RMSNorm, rotary, causal attention via
scaled_dot_product_attention, SwiGLU with intermediate 4 x width, tied embeddings, vocab 256),
sample_A_tokens_per_s (KV-cache sampling at temperature 1, batch 32, 16-token prompts, 64 new
tokens) and, with --gguf, llama_cpp_tokens_per_s (greedy, 64 new tokens after "The capital of
France is", prompt processing included, as `spar lm bench --parts model`).
Run through scripts/lm/bench_peers.sh, which runs spar in the same session and prints ratios.
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

CONFIGS = {"A": dict(layers=4, hidden=128, heads=4, batch=32, seq=128),
           "B": dict(layers=6, hidden=256, heads=8, batch=16, seq=256)}
VOCAB = 256


class RMSNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * self.weight


def rope(x, cos, sin):
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Block(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.h, self.hd = h, d // h
        self.n1, self.n2 = RMSNorm(d), RMSNorm(d)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d, bias=False) for _ in range(4))
        self.gate, self.up = nn.Linear(d, 4 * d, bias=False), nn.Linear(d, 4 * d, bias=False)
        self.down = nn.Linear(4 * d, d, bias=False)

    def forward(self, x, cos, sin, cache=None):
        b, t, d = x.shape
        y = self.n1(x)
        q = self.q(y).view(b, t, self.h, self.hd).transpose(1, 2)
        k = self.k(y).view(b, t, self.h, self.hd).transpose(1, 2)
        v = self.v(y).view(b, t, self.h, self.hd).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        if cache is not None:
            if "k" in cache:
                k = torch.cat([cache["k"], k], 2)
                v = torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
        att = F.scaled_dot_product_attention(q, k, v, is_causal=(t > 1))
        x = x + self.o(att.transpose(1, 2).reshape(b, t, d))
        y = self.n2(x)
        return x + self.down(F.silu(self.gate(y)) * self.up(y))


class Llama(nn.Module):
    def __init__(self, layers, hidden, heads, **_):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, hidden)
        self.blocks = nn.ModuleList(Block(hidden, heads) for _ in range(layers))
        self.norm = RMSNorm(hidden)
        hd = hidden // heads
        inv = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
        ang = torch.outer(torch.arange(1024).float(), inv)
        self.cos, self.sin = ang.cos(), ang.sin()
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.normal_(p, std=0.02)

    def forward(self, ids, caches=None, offset=0):
        t = ids.shape[1]
        cos, sin = self.cos[offset:offset + t], self.sin[offset:offset + t]
        x = self.emb(ids)
        for i, blk in enumerate(self.blocks):
            x = blk(x, cos, sin, None if caches is None else caches[i])
        return self.norm(x) @ self.emb.weight.t()


def train_step_ms(cfg, steps, warmup=3):
    torch.manual_seed(0)
    model = Llama(**cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    times = []
    for i in range(warmup + steps):
        batch = torch.randint(0, VOCAB, (cfg["batch"], cfg["seq"] + 1))
        start = time.perf_counter()
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), batch[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


@torch.no_grad()
def sample_tokens_per_s(cfg, prompt_len=16, new=64, runs=5):
    torch.manual_seed(1)
    model = Llama(**cfg).eval()
    prompts = torch.randint(0, VOCAB, (cfg["batch"], prompt_len))

    def run():
        caches = [dict() for _ in model.blocks]
        logits = model(prompts, caches, 0)[:, -1]
        pos = prompt_len
        for _ in range(new):
            tok = torch.multinomial(F.softmax(logits, -1), 1)
            logits = model(tok, caches, pos)[:, -1]
            pos += 1

    run()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return cfg["batch"] * new / statistics.median(times)


def llama_cpp_tokens_per_s(gguf, threads, prompt="The capital of France is", new=64, runs=5):
    from llama_cpp import Llama as LlamaCpp
    import numpy as np
    llm = LlamaCpp(model_path=gguf, n_ctx=512, n_threads=threads, n_threads_batch=threads,
                   logits_all=False, verbose=False)
    ids = llm.tokenize(prompt.encode(), add_bos=False)

    def run():
        llm.reset()
        llm.eval(ids)
        n = 0
        for _ in range(new):
            tok = int(np.argmax(llm.eval_logits[-1]))
            n += 1
            if tok == llm.token_eos():
                break
            llm.eval([tok])
        return n

    run()
    times, n = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        n = run()
        times.append(time.perf_counter() - start)
    return n / statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--gguf")
    ap.add_argument("--parts", default="train,sample,model")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    parts = args.parts.split(",")
    out = {"torch": torch.__version__, "threads": args.threads}
    if "train" in parts:
        for name, cfg in CONFIGS.items():
            out[f"train_{name}_ms"] = train_step_ms(cfg, args.steps)
    if "sample" in parts:
        out["sample_A_tokens_per_s"] = sample_tokens_per_s(CONFIGS["A"])
    if "model" in parts and args.gguf:
        out["llama_cpp_tokens_per_s"] = llama_cpp_tokens_per_s(args.gguf, args.threads)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
