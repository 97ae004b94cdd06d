//! Checkpoints: every finished NUTS chain (and the ensemble's state every
//! few seconds) saved in the output directory, so a killed run resumes
//! (`popinf fit --resume`) with draws equal to an uninterrupted run's.

use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::config::FitConfig;
use crate::error::{Error, Result};
use crate::inference::sampler::{ChainLog, ChainRecord, EnsembleState, SamplerObserver};
use crate::invalid;

/// What an interrupted run left: the chains it finished, and the run it
/// belonged to (the resolved run file without its output directory).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct CheckpointFile {
    pub fingerprint: String,
    /// NUTS: the chains finished so far (nuts-rs cannot save a chain
    /// mid-way, so NUTS checkpoints whole chains).
    pub chains: Vec<ChainRecord>,
    /// Ensemble: its exact state after the last checkpointed step.
    #[serde(default)]
    pub ensemble: Option<EnsembleState>,
    /// NUTS chains that had not finished, from [`CHECKPOINT_NUTS_NAME`].
    #[serde(skip)]
    pub logs: Vec<ChainLog>,
}

pub const CHECKPOINT_NAME: &str = "checkpoint.json";
/// The ensemble's step history, raw little-endian f64: positions, then
/// ln posteriors.
pub const CHECKPOINT_BIN_NAME: &str = "checkpoint.bin";
/// The NUTS chains' evaluation logs (see [`ChainLog`]): b"POPINFNL", the
/// run's fingerprint hash, the number of chains, then per chain its index,
/// its number of values and the values, all little-endian 64-bit. Written
/// before `checkpoint.json`, self-describing, so that either file is
/// usable whichever was written last.
pub const CHECKPOINT_NUTS_NAME: &str = "checkpoint_nuts.bin";
const NUTS_MAGIC: &[u8; 8] = b"POPINFNL";

fn fingerprint_hash(fingerprint: &str) -> u64 {
    crate::inference::sampler::nuts::fnv1a(fingerprint.bytes())
}

fn encode_logs(fingerprint: &str, logs: &std::collections::BTreeMap<usize, Vec<f64>>) -> Vec<u8> {
    let mut out = NUTS_MAGIC.to_vec();
    out.extend(fingerprint_hash(fingerprint).to_le_bytes());
    out.extend((logs.len() as u64).to_le_bytes());
    for (&chain, values) in logs {
        out.extend((chain as u64).to_le_bytes());
        out.extend((values.len() as u64).to_le_bytes());
        out.extend(f64s_to_bytes(values));
    }
    out
}

/// The logs of a checkpoint_nuts.bin, `None` when it is not this run's or
/// is damaged (the chains then start afresh, which gives the same draws).
fn decode_logs(fingerprint: &str, bytes: &[u8]) -> Option<Vec<ChainLog>> {
    let word =
        |at: usize| -> Option<u64> { Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?)) };
    if bytes.get(..8)? != NUTS_MAGIC || word(8)? != fingerprint_hash(fingerprint) {
        return None;
    }
    let mut at = 24;
    let mut logs = Vec::new();
    for _ in 0..word(16)? {
        let (chain, len) = (word(at)? as usize, word(at + 8)? as usize);
        at += 16;
        let values = bytes_to_f64s(bytes.get(at..at.checked_add(len.checked_mul(8)?)?)?);
        at += len * 8;
        logs.push(ChainLog { chain, values });
    }
    (at == bytes.len()).then_some(logs)
}

fn f64s_to_bytes(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn bytes_to_f64s(bytes: &[u8]) -> Vec<f64> {
    bytes
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect()
}

impl FitConfig {
    /// The run's identity for resuming: everything but the output folder.
    pub fn fingerprint(&self) -> String {
        let mut r = self.resolved.clone();
        r.out = None;
        toml::to_string(&r).unwrap_or_default()
    }
}

/// Forwards to the caller's observer and saves every finished NUTS chain
/// to `checkpoint.json` in the output directory, so a killed run can
/// resume (`popinf fit --resume`) without sampling those chains again.
pub struct Checkpointing<'a> {
    inner: &'a dyn SamplerObserver,
    path: PathBuf,
    fingerprint: String,
    saved: std::sync::Mutex<Vec<ChainRecord>>,
    error: std::sync::Mutex<Option<Error>>,
    /// Ensemble: seconds between saves of its state, and the last save.
    every: std::time::Duration,
    last: std::sync::Mutex<Instant>,
    /// The latest log of each unfinished NUTS chain, and when it came.
    logs: std::sync::Mutex<std::collections::BTreeMap<usize, Vec<f64>>>,
    logged_at: std::sync::Mutex<std::collections::BTreeMap<usize, Instant>>,
    started: Instant,
}

impl<'a> Checkpointing<'a> {
    pub fn new(
        cfg: &FitConfig,
        inner: &'a dyn SamplerObserver,
        already: &[ChainRecord],
        every_secs: f64,
    ) -> Self {
        Self {
            inner,
            path: cfg.out.join(CHECKPOINT_NAME),
            fingerprint: cfg.fingerprint(),
            saved: std::sync::Mutex::new(already.to_vec()),
            error: std::sync::Mutex::new(None),
            every: std::time::Duration::from_secs_f64(every_secs.max(0.0)),
            last: std::sync::Mutex::new(Instant::now()),
            logs: Default::default(),
            logged_at: Default::default(),
            started: Instant::now(),
        }
    }

    /// The NUTS logs, then checkpoint.json with the finished chains.
    fn write_nuts(&self, saved: &[ChainRecord]) {
        let bytes = encode_logs(&self.fingerprint, &self.logs.lock().expect("checkpoint lock"));
        let bin = self.path.with_file_name(CHECKPOINT_NUTS_NAME);
        if let Err(e) = crate::data::files::write_atomically(&bin, &bytes) {
            self.error.lock().expect("checkpoint lock").get_or_insert(e);
            return;
        }
        self.write(&CheckpointFile {
            fingerprint: self.fingerprint.clone(),
            chains: saved.to_vec(),
            ..Default::default()
        });
    }

    fn write(&self, file: &CheckpointFile) {
        let json = serde_json::to_vec(file).expect("plain numbers serialise");
        if let Err(e) = crate::data::files::write_atomically(&self.path, &json) {
            self.error.lock().expect("checkpoint lock").get_or_insert(e);
        }
    }

    /// The first error met while writing a checkpoint, if any.
    pub fn take_error(&self) -> Option<Error> {
        self.error.lock().expect("checkpoint lock").take()
    }
}

impl SamplerObserver for Checkpointing<'_> {
    fn on_stage(&self, label: &str) {
        self.inner.on_stage(label)
    }
    fn on_start(&self, chains: usize, iterations: u64) {
        self.inner.on_start(chains, iterations)
    }
    fn on_draw(&self, chain: usize, tuning: bool, diverging: bool) {
        self.inner.on_draw(chain, tuning, diverging)
    }
    fn on_finish(&self) {
        self.inner.on_finish()
    }
    fn should_stop(&self) -> bool {
        self.inner.should_stop()
    }
    fn on_chain_done(&self, record: &ChainRecord) {
        let mut saved = self.saved.lock().expect("checkpoint lock");
        saved.push(record.clone());
        self.logs.lock().expect("checkpoint lock").remove(&record.chain);
        self.write_nuts(&saved);
    }
    fn wants_chain_logs(&self) -> bool {
        true
    }
    fn chain_log_due(&self, chain: usize) -> bool {
        let at = self.logged_at.lock().expect("checkpoint lock");
        at.get(&chain).unwrap_or(&self.started).elapsed() >= self.every
    }
    fn on_chain_log(&self, chain: usize, log: &[f64]) {
        self.logged_at
            .lock()
            .expect("checkpoint lock")
            .insert(chain, Instant::now());
        self.logs
            .lock()
            .expect("checkpoint lock")
            .insert(chain, log.to_vec());
        let saved = self.saved.lock().expect("checkpoint lock");
        self.write_nuts(&saved);
    }
    fn checkpoint_due(&self) -> bool {
        self.last.lock().expect("checkpoint lock").elapsed() >= self.every
    }
    fn on_ensemble_state(&self, state: &EnsembleState) {
        *self.last.lock().expect("checkpoint lock") = Instant::now();
        // The history first, then the JSON that says how much of it counts:
        // a crash between the two leaves the previous, consistent pair.
        let mut bytes = f64s_to_bytes(&state.chain);
        bytes.extend(f64s_to_bytes(&state.ln_prob));
        let bin = self.path.with_file_name(CHECKPOINT_BIN_NAME);
        if let Err(e) = crate::data::files::write_atomically(&bin, &bytes) {
            self.error.lock().expect("checkpoint lock").get_or_insert(e);
            return;
        }
        self.write(&CheckpointFile {
            fingerprint: self.fingerprint.clone(),
            ensemble: Some(state.clone()),
            ..Default::default()
        });
    }
}

/// What an interrupted run saved in `cfg.out`; an error if there is no
/// checkpoint or it belongs to a different run.
/// `None` when the output directory holds no checkpoint (a job that was
/// killed before its first checkpoint, or never started: `--resume` then
/// starts afresh, so a requeued batch job can always pass it).
pub fn load_checkpoint(cfg: &FitConfig) -> Result<Option<CheckpointFile>> {
    let path = cfg.out.join(CHECKPOINT_NAME);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(Error::Io { path, source }),
    };
    let file: CheckpointFile = serde_json::from_slice(&text).map_err(|e| {
        Error::Invalid(format!(
            "{}: unreadable checkpoint ({e}); delete it to start afresh",
            path.display()
        ))
    })?;
    if file.fingerprint != cfg.fingerprint() {
        return invalid!(
            "{}: the checkpoint belongs to a different run (data, model, priors or sampler settings \
             changed); delete it or run without --resume",
            path.display()
        );
    }
    let mut file = file;
    if let Some(state) = file.ensemble.as_mut() {
        let bin = path.with_file_name(CHECKPOINT_BIN_NAME);
        let bytes = std::fs::read(&bin).map_err(|source| Error::Io {
            path: bin.clone(),
            source,
        })?;
        let values = bytes_to_f64s(&bytes);
        let n_chain = state.step * state.pos.len();
        let n_lp = state.step * state.lp.len();
        if values.len() < n_chain + n_lp {
            return invalid!(
                "{}: shorter than the checkpoint says; delete both checkpoint files to start afresh",
                bin.display()
            );
        }
        state.chain = values[..n_chain].to_vec();
        state.ln_prob = values[n_chain..n_chain + n_lp].to_vec();
    }
    let nuts = path.with_file_name(CHECKPOINT_NUTS_NAME);
    if file.ensemble.is_none()
        && let Ok(bytes) = std::fs::read(&nuts)
    {
        let logs = decode_logs(&file.fingerprint, &bytes).unwrap_or_default();
        file.logs = logs
            .into_iter()
            .filter(|l| !file.chains.iter().any(|c| c.chain == l.chain))
            .collect();
    }
    Ok(Some(file))
}
