"""spar runs checkpoints of each supported family as transformers does: same logits.

    bash scripts/lm/setup_venv.sh            # torch + transformers from PyPI, nothing from a hub
    cargo build --release -p spar-cli
    .venv-lm/bin/python scripts/lm/compare_families.py

transformers writes a tiny random checkpoint of each case with `save_pretrained` (every
parameter drawn from a normal distribution, biases and norm weights included, so that each
one matters), plus a word-level `tokenizer.json`; then the last position's logits of
`spar lm logits --model DIR --ids ...` and of `AutoModelForCausalLM.from_pretrained(DIR,
dtype=float32)` are compared for several sequences. Cases:

  qwen2          Qwen2ForCausalLM: q/k/v biases, GQA, untied head
  qwen2-tied     Qwen2ForCausalLM with tied embeddings (as Qwen2.5-0.5B ships)
  qwen2-bf16     the qwen2 model saved in bfloat16 (transformers runs it in float32 too)
  qwen3          Qwen3ForCausalLM: per-head q/k RMSNorm, head_dim 12 != hidden/heads
  qwen3-sharded  the qwen3 model in shards with model.safetensors.index.json
  llama3         LlamaForCausalLM with rope_scaling llama3 (factor 8, original context 16),
                 sequences up to 60 tokens so scaled frequencies matter
  llama-bias     LlamaForCausalLM with attention_bias and mlp_bias

Prints the max abs difference per case; exit code 1 if any exceeds the tolerance (1e-4) or
an argmax disagrees.
"""
import argparse
import sys
import tempfile
from pathlib import Path

import torch
import transformers
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, Qwen2Config,
                          Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_transformers import last_logits_gap  # noqa: E402  (runs `spar lm logits`)

ROOT = Path(__file__).resolve().parents[2]
TOL = 1e-4
VOCAB = 64
COMMON = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
              rope_theta=1000.0, rms_norm_eps=1e-6, bos_token_id=1, eos_token_id=2)


def randomize(model, seed):
    """Every parameter normal: weights std 0.3, biases std 0.5, norm weights 1 + N(0, 0.2)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if "norm" in name:
                p.copy_(1.0 + 0.2 * noise)
            elif name.endswith(".bias"):
                p.copy_(0.5 * noise)
            else:
                p.copy_(0.3 * noise)
    return model


def write_tokenizer(out):
    vocab = {f"t{i}": i for i in range(VOCAB)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="t0"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.save(str(out / "tokenizer.json"))


def cases(tmp):
    """(name, directory) of each checkpoint, written by transformers."""
    def save(name, model, **kwargs):
        out = tmp / name
        model.save_pretrained(out, **kwargs)
        write_tokenizer(out)
        return name, out

    qwen2 = randomize(Qwen2ForCausalLM(Qwen2Config(**COMMON, tie_word_embeddings=False)), 1)
    yield save("qwen2", qwen2)
    tied = randomize(Qwen2ForCausalLM(Qwen2Config(**COMMON, tie_word_embeddings=True)), 2)
    yield save("qwen2-tied", tied)
    yield save("qwen2-bf16", qwen2.to(torch.bfloat16))
    qwen3 = randomize(Qwen3ForCausalLM(Qwen3Config(**COMMON, head_dim=12,
                                                   tie_word_embeddings=False)), 3)
    yield save("qwen3", qwen3)
    yield save("qwen3-sharded", qwen3, max_shard_size="20KB")
    llama3 = LlamaConfig(**{**COMMON, "rope_theta": 10000.0}, tie_word_embeddings=False,
                         rope_scaling={"rope_type": "llama3", "factor": 8.0,
                                       "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                       "original_max_position_embeddings": 16})
    yield save("llama3", randomize(LlamaForCausalLM(llama3), 4))
    bias = LlamaConfig(**COMMON, tie_word_embeddings=False, attention_bias=True, mlp_bias=True)
    yield save("llama-bias", randomize(LlamaForCausalLM(bias), 5))


def compare(spar, name, model_dir, sequences):
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    worst, ok = 0.0, True
    for ids in sequences:
        diff, same_top = last_logits_gap(model, spar, model_dir, ids)
        worst = max(worst, diff)
        ok &= diff <= TOL and same_top
    files = sorted(p.name for p in model_dir.glob("*.safetensors*"))
    print(f"{name:14s} max abs diff {worst:.2e} over {len(sequences)} sequences "
          f"({', '.join(files)}) -> {'PASS' if ok else 'FAIL'}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spar", default=str(ROOT / "target/release/spar"))
    ap.add_argument("--keep", help="write the checkpoints here instead of a temporary folder")
    args = ap.parse_args()
    torch.set_num_threads(2)
    print(f"transformers {transformers.__version__}, torch {torch.__version__.split('+')[0]}, "
          f"tolerance {TOL}")
    gen = torch.Generator().manual_seed(0)
    sequences = [[1, 5, 9], torch.randint(0, VOCAB, (20,), generator=gen).tolist(),
                 torch.randint(0, VOCAB, (60,), generator=gen).tolist()]
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(args.keep) if args.keep else Path(tmp)
        tmp.mkdir(parents=True, exist_ok=True)
        for name, model_dir in cases(tmp):
            ok &= compare(args.spar, name, model_dir, sequences)
    print("all cases PASS" if ok else "some case FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
