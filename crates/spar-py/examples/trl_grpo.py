"""TRL's GRPOTrainer with a spar reward function, on a model spar trained (run by hand;
docs/python.md records a run).

1. spar.train: a tiny byte-level Llama learns arithmetic answers by a supervised warm start
   (configs/tasks/arithmetic-grpo-tiny.toml, warm start only). Its checkpoint is in Hugging
   Face layout, so transformers loads it as it is: no model hub involved.
2. TRL: GRPOTrainer trains that model on spar.dataset(...) rows with
   spar.reward_function(...) as its reward, so TRL's samples are judged by spar's verifier.
3. spar.eval: pass@k of the checkpoint before and after, on the same held-out problems.

    pip install ./crates/spar-py trl datasets     # torch comes with trl
    python crates/spar-py/examples/trl_grpo.py --out runs/trl-grpo
"""

import argparse
import json
from pathlib import Path

import spar

TASK = "arithmetic(digits=1,terms=2..3,ops=+-)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/trl-grpo"))
    parser.add_argument("--grpo-steps", type=int, default=20)
    parser.add_argument("--warm-start-steps", type=int, default=300)
    args = parser.parse_args()

    # 1. A warm-started tiny model, by spar (zero RL steps: the warm start and step 0 only).
    repo = Path(__file__).resolve().parents[3]
    history = spar.train(
        repo / "configs/tasks/arithmetic-grpo-tiny.toml",
        out=args.out / "spar",
        overrides={
            "run.steps": 0,
            "warm_start.steps": args.warm_start_steps,
            "eval.problems": 64,
            "eval.samples": 8,
            "eval.pass_at": [1, 8],
        },
        progress=False,
    )
    start = args.out / "spar" / "checkpoints" / "step-000000"
    print("spar warm start:", json.dumps({k: v for k, v in history[-1].items() if k.startswith("eval/")}))

    # 2. GRPO in TRL with spar's verifier as the reward.
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(start)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(start)
    # The config's prompt style is `raw`: the full prompt and a newline, no chat template
    # (crates/spar-rl/src/rollout/prompt.rs), so TRL is shown what spar trained on.
    rows = spar.dataset(TASK, 256, split="train", seed=0)
    for row in rows:
        row["prompt"] += "\n"
    config = GRPOConfig(
        output_dir=str(args.out / "trl"),
        max_steps=args.grpo_steps,
        per_device_train_batch_size=16,
        num_generations=8,
        max_completion_length=8,
        learning_rate=5e-4,
        temperature=1.0,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=0,
    )
    trainer = GRPOTrainer(
        model=model,
        processing_class=tokenizer,
        reward_funcs=[spar.reward_function(TASK)],
        args=config,
        train_dataset=Dataset.from_list(rows),
    )
    trainer.train()
    after = args.out / "trl" / "final"
    trainer.save_model(str(after))
    tokenizer.save_pretrained(str(after))
    for entry in trainer.state.log_history:
        if "reward" in entry:
            print(f"trl step {entry['step']:>3}: mean reward {entry['reward']:.3f}")

    # 3. Held-out pass@k before and after, with spar's evaluation.
    for name, path in (("before (spar warm start)", start), ("after TRL GRPO", after)):
        report = spar.eval(path, TASK, problems=64, samples=8, pass_at=[1, 8], max_tokens=8, prompt_style="raw")
        print(f"{name}: pass@1 {report['pass_at']['1']:.3f}, pass@8 {report['pass_at']['8']:.3f}")


if __name__ == "__main__":
    main()
