//! The thread that owns the model: it batches the waiting generation jobs, runs weight updates
//! and adapter changes between batches, and samples.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Instant;

use candle_core::Device;
use spar_lm::sample::{generate_streams, Completion, FinishReason};
use spar_lm::score::score_values_at_temperature;
use spar_lm::{Llama, Lora};

use super::{Adapter, Admin, ApiError, Event, GenJob, Job, JobOutput, Shared};

/// The thread that owns the model.
pub(super) struct Worker {
    pub(super) model: Llama,
    pub(super) base_version: String,
    pub(super) adapters: BTreeMap<String, Adapter>,
    pub(super) device: Device,
    pub(super) shared: Arc<Shared>,
    pub(super) inbox: Receiver<Job>,
}

impl Worker {
    pub(super) fn run(mut self) {
        while let Ok(first) = self.inbox.recv() {
            let mut waiting = vec![first];
            let deadline = Instant::now() + self.shared.config.batch_window;
            let mut sequences = count(&waiting);
            while sequences < self.shared.config.max_batch {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.inbox.recv_timeout(left) {
                    Ok(job) => {
                        sequences += count(std::slice::from_ref(&job));
                        waiting.push(job);
                    }
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            let mut generate = Vec::new();
            for job in waiting {
                match job {
                    Job::Admin(admin, reply) => {
                        // Weight changes happen between batches: first the batches queued
                        // before them.
                        self.generate(std::mem::take(&mut generate));
                        let _ = reply.send(self.admin(admin));
                    }
                    Job::Generate(g) => generate.push(g),
                }
            }
            self.generate(generate);
        }
    }

    fn admin(&mut self, admin: Admin) -> Result<String, ApiError> {
        match admin {
            Admin::LoadLora(r) => {
                if r.lora_name.is_empty() || r.lora_name == self.shared.name {
                    return Err(ApiError::new(
                        400,
                        format!(
                            "lora_name {:?} is empty or the base model's name",
                            r.lora_name
                        ),
                    )
                    .param("lora_name"));
                }
                if self.adapters.contains_key(&r.lora_name) && !r.load_inplace {
                    return Err(ApiError::new(
                        400,
                        format!(
                            "the adapter {:?} is already loaded; unload it first or set \
                             load_inplace",
                            r.lora_name
                        ),
                    )
                    .param("lora_name"));
                }
                let lora = Lora::load(Path::new(&r.lora_path), &self.device).map_err(|e| {
                    ApiError::new(400, format!("lora_path: {e}")).param("lora_path")
                })?;
                lora.attach(&mut self.model).map_err(|e| {
                    ApiError::new(400, format!("lora_path: {e}")).param("lora_path")
                })?;
                Lora::detach(&mut self.model);
                let loads = self.adapters.get(&r.lora_name).map(|a| {
                    a.version
                        .rsplit_once('#')
                        .and_then(|(_, k)| k.parse::<u64>().ok())
                        .unwrap_or(1)
                        + 1
                });
                let version = match loads {
                    None => r.lora_name.clone(),
                    Some(k) => format!("{}#{k}", r.lora_name),
                };
                self.shared
                    .versions
                    .lock()
                    .expect("versions lock")
                    .insert(r.lora_name.clone(), version.clone());
                self.adapters
                    .insert(r.lora_name.clone(), Adapter { lora, version });
                Ok(format!(
                    "Success: LoRA adapter '{}' added successfully.",
                    r.lora_name
                ))
            }
            Admin::UnloadLora(r) => {
                if self.adapters.remove(&r.lora_name).is_none() {
                    return Err(ApiError::new(
                        404,
                        format!("no adapter named {:?} is loaded", r.lora_name),
                    )
                    .param("lora_name"));
                }
                self.shared
                    .versions
                    .lock()
                    .expect("versions lock")
                    .remove(&r.lora_name);
                Ok(format!(
                    "Success: LoRA adapter '{}' removed successfully.",
                    r.lora_name
                ))
            }
            Admin::UpdateWeights(r) => {
                let loaded = spar_lm::load::load_model(
                    Path::new(&r.model_path),
                    self.shared.config.gguf_mode,
                    &self.device,
                )
                .map_err(|e| ApiError::new(400, format!("model_path: {e}")).param("model_path"))?;
                if loaded.model.config() != self.model.config() {
                    return Err(ApiError::new(
                        400,
                        format!(
                            "model_path {} has another architecture than the served model",
                            r.model_path
                        ),
                    )
                    .param("model_path"));
                }
                let mut model = loaded.model;
                for (name, a) in &self.adapters {
                    a.lora.attach(&mut model).map_err(|e| {
                        ApiError::new(
                            400,
                            format!("adapter {name} does not fit the new weights: {e}"),
                        )
                    })?;
                    Lora::detach(&mut model);
                }
                self.model = model;
                self.base_version = r
                    .weight_version
                    .clone()
                    .unwrap_or_else(|| r.model_path.clone());
                self.shared
                    .versions
                    .lock()
                    .expect("versions lock")
                    .insert(self.shared.name.clone(), self.base_version.clone());
                Ok(format!(
                    "Succeeded to update model weights (version {}).",
                    self.base_version
                ))
            }
        }
    }

    fn generate(&mut self, jobs: Vec<GenJob>) {
        // Group by model and sampling settings (all but the seed).
        let mut groups: BTreeMap<String, Vec<GenJob>> = BTreeMap::new();
        for job in jobs {
            let p = &job.params;
            let key = format!(
                "{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}\u{0}{:?}",
                job.model, p.temperature, p.top_p, p.top_k, p.max_tokens, p.stop
            );
            groups.entry(key).or_default().push(job);
        }
        for (_, group) in groups {
            self.generate_group(group);
        }
    }

    fn generate_group(&mut self, group: Vec<GenJob>) {
        let model_name = group[0].model.clone();
        let version = if model_name == self.shared.name {
            Lora::detach(&mut self.model);
            self.base_version.clone()
        } else {
            match self.adapters.get(&model_name) {
                Some(a) => {
                    if let Err(e) = a.lora.attach(&mut self.model) {
                        for job in group {
                            let _ = job.events.send(Event::Done(Err(ApiError::new(
                                500,
                                format!("adapter {model_name}: {e}"),
                            ))));
                        }
                        return;
                    }
                    a.version.clone()
                }
                None => {
                    for job in group {
                        let _ = job.events.send(Event::Done(Err(ApiError::new(
                            404,
                            format!("model {model_name:?} was unloaded"),
                        ))));
                    }
                    return;
                }
            }
        };
        // Requests tagged with another weight version than this one are refused (409).
        let (group, mismatched): (Vec<GenJob>, Vec<GenJob>) = group
            .into_iter()
            .partition(|j| j.expected_version.as_ref().is_none_or(|v| *v == version));
        for job in mismatched {
            let want = job.expected_version.clone().unwrap_or_default();
            let _ = job.events.send(Event::Done(Err(ApiError::new(
                409,
                format!(
                    "the request expects weight version {want:?}; {model_name:?} is at {version:?}"
                ),
            )
            .param("weight_version"))));
        }
        if group.is_empty() {
            Lora::detach(&mut self.model);
            return;
        }
        let params = group[0].params.clone();
        let mut prompts = Vec::new();
        let mut streams = Vec::new();
        let mut owner = Vec::new();
        for (j, job) in group.iter().enumerate() {
            for (k, p) in job.prompts.iter().enumerate() {
                prompts.push(p.clone());
                streams.push(job.streams[k]);
                owner.push((j, k));
            }
        }
        let scored: Option<Result<Vec<Vec<f32>>, String>> =
            group.iter().any(|j| j.score_prompts).then(|| {
                let pairs: Vec<(Vec<u32>, Vec<u32>)> = prompts
                    .iter()
                    .map(|p| (p[..1].to_vec(), p[1..].to_vec()))
                    .collect();
                if pairs.iter().all(|(_, c)| c.is_empty()) {
                    return Ok(vec![Vec::new(); pairs.len()]);
                }
                let temperature = if params.temperature > 0.0 {
                    params.temperature
                } else {
                    1.0
                };
                score_values_at_temperature(&self.model, &pairs, temperature)
                    .map_err(|e| e.to_string())
            });
        let result = if params.max_tokens == 0 {
            Ok(prompts
                .iter()
                .map(|_| Completion {
                    token_ids: Vec::new(),
                    text: String::new(),
                    logprobs: Vec::new(),
                    finish_reason: FinishReason::Length,
                })
                .collect())
        } else {
            generate_streams(
                &self.model,
                &self.shared.tokenizer,
                &prompts,
                &params,
                &streams,
                &mut |seq, token, logprob| {
                    let (j, k) = owner[seq];
                    let _ = group[j].events.send(Event::Token {
                        seq: k,
                        token,
                        logprob,
                    });
                },
            )
            .map_err(|e| e.to_string())
        };
        Lora::detach(&mut self.model);
        let mut completions: Vec<Vec<Completion>> = group.iter().map(|_| Vec::new()).collect();
        let mut scores: Vec<Vec<Vec<f32>>> = group.iter().map(|_| Vec::new()).collect();
        let failure = match (&result, &scored) {
            (Err(e), _) | (_, Some(Err(e))) => Some(e.clone()),
            _ => None,
        };
        if let Some(e) = failure {
            for job in group {
                let _ = job.events.send(Event::Done(Err(ApiError::new(
                    500,
                    format!("sampling failed: {e}"),
                ))));
            }
            return;
        }
        let all = result.expect("checked");
        let all_scores = scored.map(|s| s.expect("checked"));
        for (seq, c) in all.into_iter().enumerate() {
            let (j, _) = owner[seq];
            completions[j].push(c);
            if let Some(s) = &all_scores {
                scores[j].push(s[seq].clone());
            }
        }
        for ((job, c), s) in group.into_iter().zip(completions).zip(scores) {
            let _ = job.events.send(Event::Done(Ok(JobOutput {
                completions: c,
                prompt_logprobs: job.score_prompts.then_some(s),
                weight_version: version.clone(),
            })));
        }
    }
}

fn count(jobs: &[Job]) -> usize {
    jobs.iter()
        .map(|j| match j {
            Job::Generate(g) => g.prompts.len(),
            Job::Admin(..) => 0,
        })
        .sum()
}
