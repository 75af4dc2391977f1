"""Golden chat-template renderings for crates/spar-lm/tests/chat_templates.rs, by transformers.

    bash scripts/lm/setup_venv.sh
    .venv-lm/bin/python scripts/lm/golden_templates.py > crates/spar-lm/tests/data/chat_templates.json

Each template below is the `chat_template` of the named model's tokenizer_config.json as
published (copied verbatim). A word-level tokenizer carrying the model's special tokens is
given the template, and `apply_chat_template(messages, tokenize=False,
add_generation_prompt=...)` renders every conversation; a render that raises (Gemma refuses
a system turn) is recorded as the error message. The output records the transformers
version, each template's source, special tokens, conversations and renderings.
"""
import json
import sys

import transformers
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast

TEMPLATES = {
    # meta-llama/Meta-Llama-3-8B-Instruct
    "llama3": {
        "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
        "template": "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
    },
    # Qwen/Qwen2.5-0.5B-Instruct (the same for every Qwen2.5 Instruct size)
    "qwen2.5": {
        "bos_token": None, "eos_token": "<|im_end|>",
        "template": "{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {%- if messages[0]['role'] == 'system' %}\n        {{- messages[0]['content'] }}\n    {%- else %}\n        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n    {%- endif %}\n    {{- \"\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>\" }}\n    {%- for tool in tools %}\n        {{- \"\\n\" }}\n        {{- tool | tojson }}\n    {%- endfor %}\n    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": <args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n{%- else %}\n    {%- if messages[0]['role'] == 'system' %}\n        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n    {%- else %}\n        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}\n    {%- endif %}\n{%- endif %}\n{%- for message in messages %}\n    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or (message.role == \"assistant\" and not message.tool_calls) %}\n        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n    {%- elif message.role == \"assistant\" %}\n        {{- '<|im_start|>' + message.role }}\n        {%- if message.content %}\n            {{- '\\n' + message.content }}\n        {%- endif %}\n        {%- for tool_call in message.tool_calls %}\n            {%- if tool_call.function is defined %}\n                {%- set tool_call = tool_call.function %}\n            {%- endif %}\n            {{- '\\n<tool_call>\\n{\"name\": \"' }}\n            {{- tool_call.name }}\n            {{- '\", \"arguments\": ' }}\n            {{- tool_call.arguments | tojson }}\n            {{- '}\\n</tool_call>' }}\n        {%- endfor %}\n        {{- '<|im_end|>\\n' }}\n    {%- elif message.role == \"tool\" %}\n        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != \"tool\") %}\n            {{- '<|im_start|>user' }}\n        {%- endif %}\n        {{- '\\n<tool_response>\\n' }}\n        {{- message.content }}\n        {{- '\\n</tool_response>' }}\n        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n            {{- '<|im_end|>\\n' }}\n        {%- endif %}\n    {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n",
    },
    # google/gemma-2b-it (and gemma-7b-it)
    "gemma": {
        "bos_token": "<bos>", "eos_token": "<eos>",
        "template": "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}",
    },
    # microsoft/Phi-3.5-mini-instruct
    "phi3.5": {
        "bos_token": "<s>", "eos_token": "<|endoftext|>",
        "template": "{% for message in messages %}{% if message['role'] == 'system' and message['content'] %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}",
    },
    # HuggingFaceTB/SmolLM2-135M-Instruct (ChatML with a default system prompt)
    "smollm2": {
        "bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
        "template": "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
    },
}

CONVERSATIONS = [
    ([{"role": "system", "content": "Answer with a number."},
      {"role": "user", "content": "What is 12 plus 30?"}], True),
    ([{"role": "user", "content": "  Hi there!  \n"},
      {"role": "assistant", "content": "Hello. How can I help?"},
      {"role": "user", "content": "Say \"yes\" — or ja."}], True),
    ([{"role": "user", "content": "One turn"},
      {"role": "assistant", "content": "Done"}], False),
]


def main():
    cases = []
    for family, spec in TEMPLATES.items():
        special = {k: spec[k] for k in ("bos_token", "eos_token") if spec[k] is not None}
        vocab = {tok: i for i, tok in enumerate(["<unk>", *special.values()])}
        tok = PreTrainedTokenizerFast(
            tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="<unk>")),
            unk_token="<unk>", **special)
        tok.chat_template = spec["template"]
        for messages, add_generation_prompt in CONVERSATIONS:
            case = {"family": family, "messages": messages,
                    "add_generation_prompt": add_generation_prompt}
            try:
                case["rendered"] = tok.apply_chat_template(
                    messages, tokenize=False, add_generation_prompt=add_generation_prompt)
            except Exception as e:  # the template's raise_exception
                case["error"] = str(e)
            cases.append(case)
    json.dump({
        "transformers": transformers.__version__,
        "source": "scripts/lm/golden_templates.py",
        "templates": {f: {"template": s["template"],
                          "special_tokens": {k: s[k] for k in ("bos_token", "eos_token")
                                             if s[k] is not None} | {"unk_token": "<unk>"}}
                      for f, s in TEMPLATES.items()},
        "cases": cases,
    }, sys.stdout, ensure_ascii=False, indent=1)
    print()


if __name__ == "__main__":
    main()
