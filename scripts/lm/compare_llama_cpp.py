"""spar's GGUF loading against llama.cpp (llama-cpp-python) on the same file.

    bash scripts/lm/setup_venv.sh && bash scripts/setup_smollm2.sh
    cargo build --release -p spar-cli
    .venv-lm/bin/python scripts/lm/compare_llama_cpp.py

For each prompt (raw text, and one through the chat template), both implementations are fed the
same token ids (spar's; the script also reports whether llama.cpp's tokenizer gives the same
ids) and continued greedily (argmax, no sampler) for N tokens. Reported: tokenizer agreement,
how many leading greedy tokens agree (quantised and dequantised spar), and the next-token logits
after the prompt (max abs diff, top-1 and top-5 agreement). Pass: the first 8 greedy tokens of
the quantised path agree for every prompt (or all of them, when the continuation is shorter),
and the top-1 next token agrees. The two implementations' quantised kernels round differently
(logits differ by up to about 1), so a later near-tie can flip and the continuations part;
the counts are printed. Exit code 1 otherwise.
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from llama_cpp import Llama

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = [
    ("The capital of France is", False),
    ("def fibonacci(n):", False),
    ("Once upon a time", False),
    ("What is 12 plus 30?", True),
]
ENV = {**os.environ, "RAYON_NUM_THREADS": "2"}


def spar_json(args):
    out = subprocess.run(args, check=True, capture_output=True, text=True, env=ENV)
    return json.loads(out.stdout)


def llama_greedy(llm, ids, n):
    llm.reset()
    llm.eval(ids)
    first = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
    out = []
    for _ in range(n):
        tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        out.append(tok)
        if tok == llm.token_eos():
            break
        llm.eval([tok])
    return out, first


def agree(a, b):
    k = 0
    while k < min(len(a), len(b)) and a[k] == b[k]:
        k += 1
    return k


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spar", default=str(ROOT / "target/release/spar"))
    ap.add_argument("--gguf", default=str(ROOT / "models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--tokens", type=int, default=32)
    args = ap.parse_args()
    llm = Llama(model_path=args.gguf, n_ctx=1024, n_threads=2, logits_all=True, verbose=False)
    ok = True
    for prompt, chat in PROMPTS:
        base = [args.spar, "lm", "sample", "--model", args.gguf, "--prompt", prompt,
                "--max-tokens", str(args.tokens), "--json"] + (["--chat"] if chat else [])
        q = spar_json(base)
        dq = spar_json(base + ["--dequantize"])
        ids = q["prompt_ids"]
        text = prompt
        if chat:
            text = llm.detokenize(ids, special=True).decode()
        llama_ids = llm.tokenize(text.encode(), add_bos=False, special=True)
        ref, ref_logits = llama_greedy(llm, ids, args.tokens)
        ours = np.array(spar_json([args.spar, "lm", "logits", "--model", args.gguf, "--ids",
                                   ",".join(map(str, ids))])["logits"], dtype=np.float32)
        ours_dq = np.array(spar_json([args.spar, "lm", "logits", "--model", args.gguf, "--dequantize",
                                      "--ids", ",".join(map(str, ids))])["logits"], dtype=np.float32)
        top5 = lambda v: set(np.argsort(-v)[:5].tolist())
        n_q, n_dq = agree(q["token_ids"], ref), agree(dq["token_ids"], ref)
        top1 = int(np.argmax(ours)) == int(np.argmax(ref_logits))
        need = min(8, len(ref))
        case_ok = n_q >= need and top1
        ok &= case_ok
        print(f"{'chat' if chat else 'raw '} {prompt!r}")
        print(f"  tokenizer ids equal llama.cpp's: {llama_ids == ids} ({len(ids)} tokens)")
        print(f"  greedy tokens agreeing with llama.cpp: quantised {n_q}/{len(ref)}, dequantised {n_dq}/{len(ref)}")
        print(f"  next-token logits: max |diff| quantised {np.abs(ours - ref_logits).max():.3f}, "
              f"dequantised {np.abs(ours_dq - ref_logits).max():.3f}; top-1 agrees {top1}, "
              f"top-5 overlap {len(top5(ours) & top5(ref_logits))}/5")
        print(f"  llama.cpp: {llm.detokenize(ref).decode(errors='replace')!r}")
        print(f"  spar:      {q['text']!r}")
        print(f"  -> {'PASS' if case_ok else 'FAIL'}")
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
