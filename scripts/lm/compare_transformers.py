"""A checkpoint spar writes loads in Hugging Face transformers and gives the same logits.

    bash scripts/lm/setup_venv.sh && bash scripts/setup_smollm2.sh
    cargo build --release -p spar-cli
    .venv-lm/bin/python scripts/lm/compare_transformers.py

Cases: (a) a tiny byte-level model trained by `spar lm pretrain`; (b) SmolLM2-135M-Instruct
dequantised from its GGUF by `spar lm export` (checks llama.cpp's Q/K row un-permutation).
For several prompts, the last position's logits from `spar lm logits` and from
`LlamaForCausalLM.from_pretrained(dir, torch_dtype=float32)` must agree within 1e-4.
Exit code 1 if any case fails.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from transformers import LlamaForCausalLM

ROOT = Path(__file__).resolve().parents[2]
TOL = 1e-4


def spar_logits(spar, model_dir, ids):
    out = subprocess.run(
        [spar, "lm", "logits", "--model", str(model_dir), "--ids", ",".join(map(str, ids))],
        check=True, capture_output=True, text=True,
        env={**os.environ, "RAYON_NUM_THREADS": "2"},
    )
    return torch.tensor(json.loads(out.stdout)["logits"])


def last_logits_gap(model, spar, model_dir, ids):
    """Max |difference| of the last position's logits of `model` and `spar lm logits` after
    `ids`, and whether their argmax agrees."""
    with torch.no_grad():
        ref = model(torch.tensor([ids])).logits[0, -1]
    ours = spar_logits(spar, model_dir, ids)
    return (ref - ours).abs().max().item(), int(ref.argmax()) == int(ours.argmax())


def compare(spar, model_dir, sequences, name):
    model = LlamaForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    worst = 0.0
    ok = True
    for ids in sequences:
        diff, same_top = last_logits_gap(model, spar, model_dir, ids)
        worst = max(worst, diff)
        ok &= diff <= TOL and same_top
        print(f"  {name}: {len(ids):3d} tokens, max |diff| {diff:.2e}, argmax agrees {same_top}")
    print(f"{name}: max abs diff {worst:.2e} (tolerance {TOL}) -> {'PASS' if ok else 'FAIL'}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spar", default=str(ROOT / "target/release/spar"))
    ap.add_argument("--gguf", default=str(ROOT / "models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        text = tmp / "text.txt"
        text.write_text("the quick brown fox jumps over the lazy dog. " * 50)
        tiny = tmp / "tiny"
        subprocess.run(
            [args.spar, "lm", "pretrain", "--data", str(text), "--out", str(tiny), "--steps", "30",
             "--hidden", "64", "--layers", "2", "--heads", "4", "--seq-len", "64", "--batch", "8"],
            check=True, capture_output=True,
        )
        seqs = [[116, 104, 101], list(range(40, 90)), [256, 120, 121, 122, 32, 97] * 5]
        ok &= compare(args.spar, tiny, seqs, "tiny pretrained")
        if Path(args.gguf).exists():
            smol = tmp / "smollm2"
            subprocess.run([args.spar, "lm", "export", "--gguf", args.gguf, "--out", str(smol)],
                           check=True, capture_output=True)
            seqs = [[1, 9690, 198], [504, 3575, 282, 4649, 314], list(range(100, 164))]
            ok &= compare(args.spar, smol, seqs, "SmolLM2 dequantised")
        else:
            print(f"note: {args.gguf} absent (bash scripts/setup_smollm2.sh); SmolLM2 case skipped")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
