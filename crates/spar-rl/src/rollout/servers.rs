//! Rollouts sampled by OpenAI-compatible servers (`rollout.servers`), with the learner's
//! weights pushed to them the way RL frameworks push to vLLM and SGLang.
//!
//! Before every step whose weights the servers have not seen, the learner writes them to
//! `<run>/push/step-N/` and tells every server:
//! * full fine-tuning: `POST /update_weights_from_disk {model_path, weight_version: "step-N"}`
//!   (SGLang's endpoint; spar serve implements it);
//! * LoRA: once per run the frozen base with `/update_weights_from_disk` (version `base`),
//!   then each adapter with `POST /v1/load_lora_adapter {lora_name: "policy-step-N"}` (vLLM's
//!   endpoint), after which the previous adapter is unloaded. Requests then name the adapter
//!   in `model`.
//!
//! Each answer's `weight_version` must be the one just pushed ([`RemoteEngine`] counts the
//! others as failed calls), so a rollout never mixes policies silently.

use std::path::{Path, PathBuf};
use std::time::Duration;

use spar_remote::protocol::{LoadLoraRequest, UnloadLoraRequest, UpdateWeightsRequest};
use spar_remote::{Client, ClientConfig, RemoteEngine, RemoteError};

use crate::config::RolloutConfig;
use crate::error::{Error, Result};

/// The servers of `rollout.servers` and what they hold.
#[derive(Debug)]
pub struct ServerRollouts {
    engine: RemoteEngine,
    base_model: String,
    dir: PathBuf,
    adapter: Option<String>,
    base_pushed: bool,
    pushed: Option<usize>,
    last_dir: Option<PathBuf>,
}

impl ServerRollouts {
    /// Connects to every server of `config` (each must answer `/v1/models`); pushed weights go
    /// under `out/push/`.
    pub fn connect(config: &RolloutConfig, out: &Path) -> Result<ServerRollouts> {
        let mut clients = Vec::new();
        for url in &config.servers {
            let mut c = ClientConfig::new(url);
            c.timeout = Duration::from_secs_f64(config.server_timeout);
            c.max_retries = config.server_retries;
            let client = Client::new(c)?;
            client.models()?;
            clients.push(client);
        }
        let dir = std::path::absolute(out.join("push"))
            .map_err(|e| Error::Lm(spar_lm::LmError::io(out.join("push"), e)))?;
        Ok(ServerRollouts {
            engine: RemoteEngine::new(clients, &config.server_model),
            base_model: config.server_model.clone(),
            dir,
            adapter: None,
            base_pushed: false,
            pushed: None,
            last_dir: None,
        })
    }

    /// The engine rollouts sample with.
    pub fn engine(&self) -> &RemoteEngine {
        &self.engine
    }

    /// The step whose weights the servers hold.
    pub fn pushed(&self) -> Option<usize> {
        self.pushed
    }

    /// Where the weights of `step` are written before they are pushed.
    pub fn dir_for(&self, step: usize) -> PathBuf {
        self.dir.join(format!("step-{step:06}"))
    }

    fn update_weights(&self, path: &Path, version: &str) -> Result<()> {
        for client in self.engine.clients() {
            client.update_weights_from_disk(&UpdateWeightsRequest {
                model_path: path.display().to_string(),
                weight_version: Some(version.to_string()),
            })?;
        }
        Ok(())
    }

    /// The full weights of `step`, written to [`ServerRollouts::dir_for`], become the
    /// servers' base model.
    pub fn push_full(&mut self, step: usize) -> Result<()> {
        let version = format!("step-{step}");
        self.update_weights(&self.dir_for(step), &version)?;
        self.engine.set_model(&self.base_model);
        self.engine.expect_version(Some(version));
        self.finish(step)
    }

    /// The adapter of `step`, written to [`ServerRollouts::dir_for`], is loaded over `base`
    /// (pushed first, once per run) and requests name it.
    pub fn push_adapter(&mut self, base: &Path, step: usize) -> Result<()> {
        if !self.base_pushed {
            let base =
                std::path::absolute(base).map_err(|e| Error::Lm(spar_lm::LmError::io(base, e)))?;
            self.update_weights(&base, "base")?;
            self.base_pushed = true;
        }
        let name = format!("policy-step-{step:06}");
        let path = self.dir_for(step).display().to_string();
        for client in self.engine.clients() {
            // A server may hold this name from an earlier, interrupted run: replace it.
            let _ = client.unload_lora_adapter(&UnloadLoraRequest {
                lora_name: name.clone(),
            });
            client.load_lora_adapter(&LoadLoraRequest {
                lora_name: name.clone(),
                lora_path: path.clone(),
                load_inplace: false,
            })?;
            if let Some(old) = &self.adapter {
                match client.unload_lora_adapter(&UnloadLoraRequest {
                    lora_name: old.clone(),
                }) {
                    Ok(_) | Err(RemoteError::Status { status: 404, .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        self.engine.set_model(&name);
        self.engine.expect_version(Some(name.clone()));
        self.adapter = Some(name);
        self.finish(step)
    }

    fn finish(&mut self, step: usize) -> Result<()> {
        if let Some(old) = self.last_dir.take() {
            let _ = std::fs::remove_dir_all(old);
        }
        self.last_dir = Some(self.dir_for(step));
        self.pushed = Some(step);
        Ok(())
    }
}
