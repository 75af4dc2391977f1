"""Golden logits for crates/spar-lm/tests/golden_logits.rs, from Hugging Face transformers.

    SPAR_LM_GOLDEN_DIR=/tmp/golden cargo test -p spar-lm --test golden_logits
    .venv-lm/bin/python scripts/lm/golden_logits.py /tmp/golden

Loads the checkpoint spar wrote with LlamaForCausalLM (float32) and prints the logits at the
last position and the sum of all logits, formatted as the Rust constants.
"""
import sys

import torch
import transformers
from transformers import LlamaForCausalLM

IDS = [3, 14, 15, 9, 26, 5, 35]

torch.set_num_threads(2)
model = LlamaForCausalLM.from_pretrained(sys.argv[1], torch_dtype=torch.float32).eval()
with torch.no_grad():
    logits = model(torch.tensor([IDS])).logits[0]
last = logits[-1].tolist()
print(f"/// `transformers` {transformers.__version__} / torch {torch.__version__.split('+')[0]} CPU, float32: logits at the last position.")
print(f"const LAST: [f64; {len(last)}] = [")
for i in range(0, len(last), 6):
    print("    " + " ".join(f"{v:.8g}," for v in last[i:i + 6]))
print("];")
print(f"/// The sum of all {logits.shape[0]} x {logits.shape[1]} logits.")
print(f"const SUM: f64 = {logits.sum().item():.9g};")
