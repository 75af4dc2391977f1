"""Tables of experiments/rlsp-alpha/README.md from the runs' metrics.jsonl and episodes.

    python3 experiments/rlsp-alpha/table.py [RUNS]      (default runs/experiments/tasks)

Per arm, mean and (min .. max) over seeds 0-2: held-out pass@1 and its 95% half-width,
held-out answer tokens, training accuracy (the verifier's) and answer tokens, mean over steps
31-40; and, from the episodes of steps 31-40, training accuracy on 2-term and 3-term questions
(the harder ones) and the share of answers with text after their last digit (length padding).
"""
import json
import sys
from pathlib import Path

RUNS = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/experiments/tasks")
ARMS = [("1.0", "grpo"), ("0.9", "rlsp-0.9"), ("0.5", "rlsp-0.5")]
SEEDS = [0, 1, 2]
LAST = range(31, 41)


def lines(run):
    return [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]


def cell(values, digits=3):
    mean = sum(values) / len(values)
    return f"{mean:.{digits}f} ({min(values):.{digits}f} .. {max(values):.{digits}f})"


def per_seed(run):
    ms = lines(run)
    last = ms[-1]
    late = [m for m in ms if m["step"] in LAST]
    terms = {2: [0, 0], 3: [0, 0]}
    padded = total = 0
    for step in LAST:
        for row in (run / f"episodes/step-{step:06d}.jsonl").read_text().splitlines():
            e = json.loads(row)
            t = sum(e["question"].count(op) for op in "+-") + 1  # operands are >= 0
            terms[t][0] += e["verdict"]["verdict"] == "correct"
            terms[t][1] += 1
            c = e["completion"].rstrip()
            digits = [i for i, ch in enumerate(c) if ch.isdigit()]
            padded += bool(digits) and digits[-1] < len(c) - 1
            total += 1
    return {
        "pass@1 (step 40)": last["eval/arithmetic/pass_at/1"],
        "pass@1 95% half-width (step 40)": last["eval/arithmetic/pass1_ci95"],
        "pass@1 (step 0)": ms[0]["eval/arithmetic/pass_at/1"],
        "held-out answer tokens (step 40)": last["eval/arithmetic/response_tokens"],
        "training accuracy (verifier), steps 31-40": sum(m["tasks/train_accuracy"] for m in late) / len(late),
        "training answer tokens, steps 31-40": sum(m["tasks/response_tokens"] for m in late) / len(late),
        "training accuracy, 2 terms, steps 31-40": terms[2][0] / max(terms[2][1], 1),
        "training accuracy, 3 terms, steps 31-40": terms[3][0] / max(terms[3][1], 1),
        "answers with text after the last digit, steps 31-40": padded / total,
    }


table = {alpha: [per_seed(RUNS / arm / f"seed{s}") for s in SEEDS] for alpha, arm in ARMS}
print("| mean (min .. max) over 3 seeds | " + " | ".join(f"alpha {a}" for a, _ in ARMS) + " |")
print("|---|" + "---:|" * len(ARMS))
for key in table["1.0"][0]:
    print(f"| {key} | " + " | ".join(cell([r[key] for r in table[a]]) for a, _ in ARMS) + " |")
