"""The official `openai` Python client against an OpenAI-compatible server (`spar serve`).

Runs one check per line: list models; a completion with log-probabilities; a chat completion
with log-probabilities; streamed chat and completion answers equal to the unstreamed ones with
the same seed; a bad request raising the client's 4xx error. Exits 1 on any failure.

    python scripts/openai_client_check.py --base-url http://127.0.0.1:8000/v1 --model smollm2

(`scripts/openai_client_check.sh` installs the client in a venv and runs this.)
"""

import argparse
import sys
import traceback

import openai


def check_models(client, model):
    models = client.models.list()
    ids = [m.id for m in models.data]
    assert model in ids, f"{model!r} not in the served models {ids}"
    return f"models: {ids}"


def check_completion(client, model, max_tokens, seed):
    response = client.completions.create(
        model=model,
        prompt="The capital of France is",
        max_tokens=max_tokens,
        seed=seed,
        temperature=0.8,
        logprobs=1,
    )
    choice = response.choices[0]
    assert isinstance(choice.text, str), f"text is {type(choice.text)}"
    logprobs = choice.logprobs.token_logprobs
    completion_tokens = response.usage.completion_tokens
    assert 1 <= completion_tokens <= max_tokens, f"usage {response.usage}"
    assert len(logprobs) == completion_tokens, (
        f"{len(logprobs)} log-probabilities for {completion_tokens} tokens"
    )
    assert all(isinstance(x, float) and x <= 0.0 for x in logprobs), logprobs
    assert len(choice.logprobs.tokens) == completion_tokens
    assert "".join(choice.logprobs.tokens) == choice.text, (choice.logprobs.tokens, choice.text)
    return f"completion: {choice.text!r}, token_logprobs {[round(x, 3) for x in logprobs]}"


def check_chat(client, model, max_tokens, seed):
    response = client.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "What is 2+2?"},
        ],
        max_tokens=max_tokens,
        seed=seed,
        temperature=0.8,
        logprobs=True,
    )
    choice = response.choices[0]
    message = choice.message
    assert message.role == "assistant", message.role
    assert isinstance(message.content, str), f"content is {type(message.content)}"
    content = choice.logprobs.content
    assert content, "logprobs.content is empty"
    assert len(content) == response.usage.completion_tokens, (
        f"{len(content)} entries for {response.usage.completion_tokens} tokens"
    )
    assert all(isinstance(t.logprob, float) and t.logprob <= 0.0 for t in content)
    assert all(isinstance(t.token, str) for t in content)
    return f"chat: {message.content!r}, {len(content)} token log-probabilities"


def chat_messages():
    return [{"role": "user", "content": "Name a colour."}]


def check_chat_stream(client, model, max_tokens, seed):
    common = dict(model=model, messages=chat_messages(), max_tokens=max_tokens, seed=seed,
                  temperature=1.0)
    whole = client.chat.completions.create(**common).choices[0].message.content
    parts, finish = [], None
    for chunk in client.chat.completions.create(stream=True, **common):
        for choice in chunk.choices:
            if choice.delta.content:
                parts.append(choice.delta.content)
            finish = choice.finish_reason or finish
    streamed = "".join(parts)
    assert streamed == whole, f"streamed {streamed!r} != unstreamed {whole!r}"
    assert finish in ("stop", "length"), f"finish_reason {finish!r}"
    return f"chat stream: {len(parts)} deltas = {whole!r} ({finish})"


def check_completion_stream(client, model, max_tokens, seed):
    common = dict(model=model, prompt="Once upon a time", max_tokens=max_tokens, seed=seed,
                  temperature=1.0)
    whole = client.completions.create(**common).choices[0].text
    parts, finish = [], None
    for chunk in client.completions.create(stream=True, **common):
        for choice in chunk.choices:
            parts.append(choice.text)
            finish = choice.finish_reason or finish
    streamed = "".join(parts)
    assert streamed == whole, f"streamed {streamed!r} != unstreamed {whole!r}"
    assert finish in ("stop", "length"), f"finish_reason {finish!r}"
    return f"completion stream: {len(parts)} chunks = {whole!r} ({finish})"


def check_bad_request(client, model, max_tokens, seed):
    try:
        client.completions.create(
            model="no-such-model-" + model, prompt="x", max_tokens=1, seed=seed
        )
    except (openai.NotFoundError, openai.BadRequestError) as e:
        assert 400 <= e.status_code < 500, e.status_code
        return f"bad request: {type(e).__name__} {e.status_code}: {e.message}"
    raise AssertionError("a request for an unknown model did not raise")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--model", required=True, help="a served model name")
    parser.add_argument("--max-tokens", type=int, default=6)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per request")
    args = parser.parse_args()

    # No retries: a failed call is a failed check, not something to hide.
    client = openai.OpenAI(
        base_url=args.base_url, api_key="spar", timeout=args.timeout, max_retries=0
    )
    print(f"openai {openai.__version__} against {args.base_url} ({args.model})", flush=True)
    checks = [
        lambda: check_models(client, args.model),
        lambda: check_completion(client, args.model, args.max_tokens, args.seed),
        lambda: check_chat(client, args.model, args.max_tokens, args.seed),
        lambda: check_chat_stream(client, args.model, args.max_tokens, args.seed),
        lambda: check_completion_stream(client, args.model, args.max_tokens, args.seed),
        lambda: check_bad_request(client, args.model, args.max_tokens, args.seed),
    ]
    failed = 0
    for check in checks:
        try:
            print(f"ok   {check()}", flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported, then counted
            failed += 1
            print(f"FAIL {type(e).__name__}: {e}", flush=True)
            traceback.print_exc(limit=-2, chain=False, file=sys.stdout)
    if failed:
        print(f"{failed} of {len(checks)} checks FAILED", flush=True)
    else:
        print(f"all {len(checks)} checks passed", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
