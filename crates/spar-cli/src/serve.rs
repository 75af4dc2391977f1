//! `spar serve`: spar's own models behind an OpenAI-compatible HTTP API (see
//! `spar_remote::server` for the endpoints).

use std::path::PathBuf;
use std::time::Duration;

use spar_remote::server::{ApiKey, Faults, ServeConfig};
use tracing_subscriber::EnvFilter;

use crate::UsageError;

/// Arguments of `spar serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The model: a checkpoint directory (e.g. `runs/k/checkpoints/step-000300`) or a .gguf
    /// file.
    #[arg(long)]
    model: PathBuf,
    /// An adapter loaded at start, as NAME=DIR (a PEFT directory); repeatable. Requests use
    /// it by putting NAME in `model`.
    #[arg(long = "lora", value_name = "NAME=DIR")]
    loras: Vec<String>,
    /// The name requests use for the base model [default: the model's file or directory
    /// name].
    #[arg(long)]
    served_model_name: Option<String>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port (0 picks a free one; the address is printed on stderr).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Most sequences sampled in one batch.
    #[arg(long, default_value_t = 64)]
    max_batch: usize,
    /// Milliseconds the model waits for more requests before sampling a batch.
    #[arg(long, default_value_t = 0)]
    batch_window_ms: u64,
    /// Largest request body accepted, in bytes (larger ones get 413).
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    max_body_bytes: usize,
    /// Largest max_tokens accepted.
    #[arg(long, default_value_t = 4096)]
    max_tokens_limit: usize,
    /// Most connections open at once (more get 503).
    #[arg(long, default_value_t = 512)]
    max_connections: usize,
    /// The version answers carry until the first weight update.
    #[arg(long, default_value = "0")]
    weight_version: String,
    /// Load a .gguf file dequantised to f32 instead of quantised.
    #[arg(long)]
    dequantize: bool,
    /// Inject faults into generation requests, for testing clients:
    /// drop=P,stall=P,error=P,stall_ms=MS,seed=S (cut connections, held answers, HTTP 500s).
    #[arg(long)]
    faults: Option<String>,
    /// The key the adapter and weight endpoints require as `Authorization: Bearer KEY`
    /// [default: the environment variable SPAR_API_KEY, which keeps it out of shell history].
    /// Without a key, those endpoints answer only on loopback (403 elsewhere).
    #[arg(long, value_name = "KEY")]
    api_key: Option<String>,
    /// Which log lines go to stderr (one per request at `info`: method, path, status,
    /// milliseconds), as a tracing filter: `info`, `warn` (no request lines), `spar_remote=info`...
    /// [default: the environment variable RUST_LOG, else `info`].
    #[arg(long, value_name = "FILTER")]
    log: Option<String>,
}

/// Runs `spar serve` until the process is stopped.
pub fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let mut loras = Vec::new();
    for spec in &args.loras {
        let (name, dir) = spec.split_once('=').ok_or_else(|| {
            UsageError(format!(
                "--lora {spec:?} is not NAME=DIR (e.g. --lora policy=runs/x/adapter)"
            ))
        })?;
        loras.push((name.to_string(), PathBuf::from(dir)));
    }
    let faults: Faults = match &args.faults {
        Some(text) => text
            .parse()
            .map_err(|e| UsageError(format!("--faults: {e}")))?,
        None => Faults::default(),
    };
    if args.max_batch == 0 {
        return Err(UsageError("--max-batch must be at least 1".into()).into());
    }
    if !args.model.exists() {
        return Err(UsageError(format!(
            "--model {}: no such file or directory",
            args.model.display()
        ))
        .into());
    }
    let api_key = match &args.api_key {
        Some(key) => Some(ApiKey::new(key).map_err(|e| UsageError(format!("--api-key: {e}")))?),
        None => match std::env::var("SPAR_API_KEY") {
            Ok(key) if !key.trim().is_empty() => {
                Some(ApiKey::new(&key).map_err(|e| UsageError(format!("SPAR_API_KEY: {e}")))?)
            }
            _ => None,
        },
    };
    let filter = match (&args.log, std::env::var("RUST_LOG")) {
        (Some(filter), _) => EnvFilter::try_new(filter)
            .map_err(|e| UsageError(format!("--log {filter:?}: {e} (e.g. --log info)")))?,
        (None, Ok(filter)) if !filter.trim().is_empty() => EnvFilter::try_new(&filter)
            .map_err(|e| UsageError(format!("RUST_LOG={filter:?}: {e} (e.g. RUST_LOG=info)")))?,
        (None, _) => EnvFilter::new("info"),
    };
    // Another subscriber (a test harness's) may already be set: keep it.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    crate::lm::set_threads();
    let config = ServeConfig {
        served_name: args.served_model_name.clone(),
        loras,
        max_batch: args.max_batch,
        batch_window: Duration::from_millis(args.batch_window_ms),
        max_body_bytes: args.max_body_bytes,
        max_tokens_limit: args.max_tokens_limit,
        max_connections: args.max_connections,
        gguf_mode: if args.dequantize {
            spar_lm::load::GgufMode::Dequantized
        } else {
            spar_lm::load::GgufMode::Quantized
        },
        weight_version: args.weight_version.clone(),
        faults,
        api_key,
        ..ServeConfig::new(&args.model, &format!("{}:{}", args.host, args.port))
    };
    spar_remote::server::serve(&config)?;
    Ok(())
}
