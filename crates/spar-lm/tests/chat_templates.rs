//! Chat templates rendered through minijinja agree with `transformers`.
//!
//! `tests/data/chat_templates.json` was written by `scripts/lm/golden_templates.py` with
//! `transformers` 5.25.0 (the file records the version): for each family's published
//! template (Meta-Llama-3-8B-Instruct, Qwen2.5-Instruct, gemma-2b-it, Phi-3.5-mini-instruct,
//! SmolLM2-135M-Instruct; each template's exact source is in the file), the string
//! `apply_chat_template(messages, tokenize=False, add_generation_prompt=...)` returned for
//! three conversations, or the error its `raise_exception` raised.

use std::collections::BTreeMap;

use spar_lm::jinja::JinjaTemplate;
use spar_lm::tokenizer::{Message, TextTokenizer};

const GOLDEN: &str = include_str!("data/chat_templates.json");

fn golden() -> serde_json::Value {
    serde_json::from_str(GOLDEN).unwrap()
}

fn template(golden: &serde_json::Value, family: &str) -> JinjaTemplate {
    let spec = &golden["templates"][family];
    let special: BTreeMap<String, String> =
        serde_json::from_value(spec["special_tokens"].clone()).unwrap();
    JinjaTemplate::new(spec["template"].as_str().unwrap(), special).unwrap()
}

fn messages(case: &serde_json::Value) -> Vec<Message> {
    case["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| Message::new(m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect()
}

#[test]
fn every_family_renders_as_transformers_renders() {
    let golden = golden();
    assert_eq!(golden["transformers"], "5.25.0");
    let cases = golden["cases"].as_array().unwrap();
    let mut families = std::collections::BTreeSet::new();
    for case in cases {
        let family = case["family"].as_str().unwrap();
        families.insert(family);
        let t = template(&golden, family);
        let got = t.render(
            &messages(case),
            case["add_generation_prompt"].as_bool().unwrap(),
        );
        match (&case["rendered"], &case["error"]) {
            (serde_json::Value::String(want), _) => {
                assert_eq!(got.unwrap(), *want, "{family}: {case}")
            }
            (_, serde_json::Value::String(error)) => {
                let err = got.unwrap_err().to_string();
                assert!(err.contains(error.as_str()), "{family}: {err}");
            }
            _ => panic!("case without a rendering or an error: {case}"),
        }
    }
    assert_eq!(
        families.into_iter().collect::<Vec<_>>(),
        ["gemma", "llama3", "phi3.5", "qwen2.5", "smollm2"]
    );
}

/// A model directory whose `tokenizer_config.json` has a Llama 3 template: the tokenizer
/// carries it, renders with it, and writes it back unchanged.
#[test]
fn a_tokenizer_config_template_is_loaded_rendered_and_saved() {
    let golden = golden();
    let dir = std::env::temp_dir().join(format!("spar-lm-chat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tok = TextTokenizer::byte_level(&["<|begin_of_text|>", "<|eot_id|>"]).unwrap();
    tok.save(&dir).unwrap();
    let config_path = dir.join("tokenizer_config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    let source = golden["templates"]["llama3"]["template"].clone();
    config["chat_template"] = source.clone();
    config["bos_token"] = "<|begin_of_text|>".into();
    config["eos_token"] = "<|eot_id|>".into();
    std::fs::write(&config_path, config.to_string()).unwrap();

    let loaded = TextTokenizer::from_hf(&dir).unwrap();
    // Not ChatML, so there is no native layout; the Jinja template is there.
    assert!(loaded.chat_template().is_none());
    let jinja = loaded.jinja_template().expect("the template is loaded");
    assert_eq!(jinja.source(), source.as_str().unwrap());
    let case = &golden["cases"][0];
    assert_eq!(case["family"], "llama3");
    assert_eq!(
        loaded.render_chat(&messages(case), true).unwrap(),
        case["rendered"].as_str().unwrap()
    );
    // Saved and read back: the same source.
    loaded.save(&dir).unwrap();
    let again = TextTokenizer::from_hf(&dir).unwrap();
    assert_eq!(again.jinja_template(), loaded.jinja_template());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `render_chat` (the `chat` and `auto` prompt styles) gives transformers' string too: spar's
/// native ChatML layout is used only where it agrees with the template (SmolLM2's), not for
/// a template that merely contains ChatML markers (Qwen2.5's, whose tool branch holds another
/// system text).
#[test]
fn the_native_layout_is_used_only_where_it_agrees_with_the_template() {
    let golden = golden();
    for case in golden["cases"].as_array().unwrap() {
        let family = case["family"].as_str().unwrap();
        let tok = TextTokenizer::byte_level(&["<|endoftext|>"])
            .unwrap()
            .with_jinja_template(template(&golden, family));
        assert_eq!(
            tok.chat_template().is_some(),
            family == "smollm2",
            "{family}: native layout"
        );
        let got = tok.render_chat(
            &messages(case),
            case["add_generation_prompt"].as_bool().unwrap(),
        );
        match &case["rendered"] {
            serde_json::Value::String(want) => assert_eq!(got.unwrap(), *want, "{family}"),
            _ => assert!(got.is_err(), "{family}"),
        }
    }
}
