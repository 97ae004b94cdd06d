//! NUTS through nuts-rs (the sampler behind nutpie), behind popinf's own
//! seam: anything that is a [`SampleableModel`] can be sampled, several
//! chains in parallel, each with its own seeded random stream so that the
//! draws do not depend on the thread count.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use nuts_rs::{
    Chain, CpuLogpFunc, CpuMath, CpuMathError, DiagNutsSettings, HasDims, LogpError, LowRankNutsSettings,
    Settings,
};
use rand::{RngExt, SeedableRng};
use rayon::prelude::*;

use crate::data::simulate::derive_seed;
use crate::error::{Error, Result};
use crate::inference::posterior::SampleableModel;
use crate::inference::sampler::SamplerObserver;
use crate::inference::trace::Trace;
use crate::invalid;

/// NUTS settings; the defaults are PyMC's.
#[derive(Debug, Clone, PartialEq)]
pub struct NutsSettings {
    pub chains: usize,
    /// Tuning (warm-up) iterations per chain, discarded.
    pub tune: u64,
    /// Kept draws per chain.
    pub draws: u64,
    /// Target mean acceptance statistic for step-size adaptation.
    pub target_accept: f64,
    /// Trajectories stop at 2^max_depth leapfrog steps.
    pub max_depth: u64,
    pub seed: u64,
    /// Each chain starts at the model's initial point plus U(-j, j) per
    /// coordinate (PyMC's "jitter+adapt_diag").
    pub init_jitter: f64,
    /// The mass matrix adapted during tuning.
    pub mass_matrix: MassMatrix,
}

/// The mass matrix NUTS adapts in warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum MassMatrix {
    /// Diagonal: one scale per parameter (PyMC's and Stan's default).
    #[default]
    Diag,
    /// Diagonal plus a low-rank part from the draws' and gradients'
    /// leading directions (nutpie's `adaptation="low_rank"`): follows
    /// correlations between parameters, as a double Schechter's have.
    LowRank,
}

impl MassMatrix {
    /// As written in run files.
    pub fn name(self) -> &'static str {
        match self {
            MassMatrix::Diag => "diag",
            MassMatrix::LowRank => "low_rank",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "diag" | "diagonal" => Some(MassMatrix::Diag),
            "low_rank" | "low-rank" | "lowrank" => Some(MassMatrix::LowRank),
            _ => None,
        }
    }
}

impl Default for NutsSettings {
    fn default() -> Self {
        Self {
            chains: 4,
            tune: 1000,
            draws: 1000,
            target_accept: 0.8,
            max_depth: 10,
            seed: 0,
            init_jitter: 1.0,
            mass_matrix: MassMatrix::Diag,
        }
    }
}

/// Per-draw sampler statistics after tuning, `[chain * draws + draw]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NutsDrawStats {
    pub diverging: Vec<bool>,
    pub tree_depth: Vec<u64>,
    pub max_depth_reached: Vec<bool>,
    pub step_size: Vec<f64>,
    pub energy: Vec<f64>,
    /// Mean Metropolis acceptance statistic over the trajectory.
    pub acceptance: Vec<f64>,
    pub n_steps: Vec<u64>,
}

impl NutsDrawStats {
    pub fn divergences(&self) -> usize {
        self.diverging.iter().filter(|&&d| d).count()
    }

    pub fn max_depth_hits(&self) -> usize {
        self.max_depth_reached.iter().filter(|&&d| d).count()
    }

    fn truncate(&mut self, n: usize) {
        self.diverging.truncate(n);
        self.tree_depth.truncate(n);
        self.max_depth_reached.truncate(n);
        self.step_size.truncate(n);
        self.energy.truncate(n);
        self.acceptance.truncate(n);
        self.n_steps.truncate(n);
    }
}

/// What a NUTS run produced.
#[derive(Debug, Clone)]
pub struct NutsRun {
    /// Kept draws in natural units.
    pub trace: Trace,
    pub stats: NutsDrawStats,
    /// Divergent transitions during tuning (expected early on; not counted
    /// as a failure).
    pub tune_divergences: usize,
    /// Gradient evaluations over all chains, tuning included.
    pub grad_evals: u64,
    /// The run was stopped (e.g. Ctrl-C) before all draws were made; the
    /// trace holds the draws every chain reached.
    pub stopped_early: bool,
    pub settings: NutsSettings,
}

/// The log density was not finite: nuts-rs treats this as a divergence
/// and carries on.
#[derive(Debug, thiserror::Error)]
#[error("log density or its gradient is not finite")]
pub struct NonFiniteDensity;

impl LogpError for NonFiniteDensity {
    fn is_recoverable(&self) -> bool {
        true
    }
}

/// A chain's density evaluations so far, what a checkpoint keeps of a
/// chain that has not finished: per evaluation `dim + 2` values, a hash of
/// the position's bits (as f64 bits), ln p and its gradient. nuts-rs cannot
/// save a chain's state (its step-size and mass-matrix adaptation, its
/// random stream), but a chain is deterministic given its seed and the
/// values it is shown: resuming re-runs the chain from its first draw,
/// serving the logged values instead of computing the likelihood (the
/// expensive part), so it reaches the point of the kill in a fraction of
/// the time and continues with exactly the uninterrupted run's bits.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChainLog {
    pub chain: usize,
    pub values: Vec<f64>,
}

/// Where a NUTS run continues from: chains that finished, and logs of
/// those that had not.
#[derive(Debug, Clone, Default)]
pub struct NutsResume {
    pub finished: Vec<ChainRecord>,
    pub logs: Vec<ChainLog>,
}

/// FNV-1a, 64-bit: the checkpoint's fingerprint check and the replay's
/// position check.
pub(crate) fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A replayed evaluation must be asked at exactly the position it was
/// logged at: the hash of its bits.
fn position_hash(position: &[f64]) -> u64 {
    fnv1a(position.iter().flat_map(|v| v.to_bits().to_le_bytes()))
}

/// Most values a chain's log keeps (512 MB): past it the chain stops
/// logging, and the log already saved, a prefix of the chain, still
/// replays correctly (the rest is computed). A latent-variable model with
/// 10^4 objects would otherwise log 80 kB per gradient.
const MAX_LOG_VALUES: usize = 1 << 26;

/// nuts-rs's view of a popinf model.
struct NutsAdapter<'a, M: ?Sized> {
    model: &'a M,
    dim: usize,
    grad_evals: &'a AtomicU64,
    /// Logged evaluations to serve before computing (a resumed chain).
    replay: &'a [f64],
    cursor: usize,
    /// Set when a replayed evaluation is asked at another position.
    diverged: &'a AtomicBool,
    /// Where every evaluation is logged, when checkpoints want it.
    log: Option<&'a Mutex<Vec<f64>>>,
}

impl<M: SampleableModel + ?Sized> HasDims for NutsAdapter<'_, M> {
    fn dim_sizes(&self) -> HashMap<String, u64> {
        HashMap::from([
            ("unconstrained_parameter".to_string(), self.dim as u64),
            ("dim".to_string(), self.dim as u64),
        ])
    }
}

impl<M: SampleableModel + ?Sized> CpuLogpFunc for NutsAdapter<'_, M> {
    type LogpError = NonFiniteDensity;
    type FlowParameters = ();
    type ExpandedVector = Vec<f64>;

    fn dim(&self) -> usize {
        self.dim
    }

    fn logp(&mut self, position: &[f64], gradient: &mut [f64]) -> std::result::Result<f64, NonFiniteDensity> {
        self.grad_evals.fetch_add(1, Ordering::Relaxed);
        let stride = self.dim + 2;
        let at = self.cursor * stride;
        let replaying = at + stride <= self.replay.len() && !self.diverged.load(Ordering::Relaxed);
        let mut log = self
            .log
            .map(|log| log.lock().expect("chain log lock"))
            .filter(|log| log.len() + stride <= MAX_LOG_VALUES);
        // (Hashed only where it is compared or kept.)
        let hash = if replaying || log.is_some() {
            position_hash(position)
        } else {
            0
        };
        let v = if replaying {
            let e = &self.replay[at..at + stride];
            if e[0].to_bits() != hash {
                self.diverged.store(true, Ordering::Relaxed);
            }
            self.cursor += 1;
            gradient.copy_from_slice(&e[2..]);
            e[1]
        } else {
            self.model.ln_density_grad(position, gradient)
        };
        if let Some(log) = log.as_mut() {
            log.push(f64::from_bits(hash));
            log.push(v);
            log.extend_from_slice(gradient);
        }
        if v.is_finite() && gradient.iter().all(|g| g.is_finite()) {
            Ok(v)
        } else {
            Err(NonFiniteDensity)
        }
    }

    fn expand_vector<R: rand::Rng + ?Sized>(
        &mut self,
        _rng: &mut R,
        array: &[f64],
    ) -> std::result::Result<Vec<f64>, CpuMathError> {
        Ok(array.to_vec())
    }
}

/// Everything one chain produced: enough to rebuild the run without
/// sampling the chain again (what a checkpoint stores).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChainRecord {
    pub chain: usize,
    /// Kept draws in natural units, draw-major.
    pub draws: Vec<f64>,
    pub stats: NutsDrawStats,
    pub tune_divergences: usize,
    pub grad_evals: u64,
}

fn nuts_error(chain: usize, e: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("NUTS chain {chain}: {e}"))
}

fn validate(settings: &NutsSettings) -> Result<()> {
    if settings.chains == 0 {
        return invalid!("NUTS: chains must be at least 1, got 0");
    }
    if settings.draws == 0 {
        return invalid!("NUTS: draws must be at least 1, got 0");
    }
    if !(settings.target_accept > 0.0 && settings.target_accept < 1.0) {
        return invalid!(
            "NUTS: target acceptance must be in (0, 1), got {}",
            settings.target_accept
        );
    }
    if settings.max_depth == 0 || settings.max_depth > 30 {
        return invalid!(
            "NUTS: max tree depth must be in 1..=30, got {}",
            settings.max_depth
        );
    }
    if !(settings.init_jitter.is_finite() && settings.init_jitter >= 0.0) {
        return invalid!(
            "NUTS: init jitter must be finite and >= 0, got {}",
            settings.init_jitter
        );
    }
    Ok(())
}

/// Samples `model` with NUTS, chains in parallel.
pub fn sample_nuts<M: SampleableModel + ?Sized>(
    model: &M,
    settings: &NutsSettings,
    observer: &dyn SamplerObserver,
) -> Result<NutsRun> {
    sample_nuts_resuming(model, settings, observer, NutsResume::default())
}

/// As [`sample_nuts`], continuing an earlier, interrupted run with the same
/// model and settings: chains it finished are reused, and chains it had
/// logged (see [`ChainLog`]) are replayed from their logs. Each chain is
/// deterministic given the seed, its index and the values it is shown, so
/// the result is the uninterrupted run's, bit for bit.
pub fn sample_nuts_resuming<M: SampleableModel + ?Sized>(
    model: &M,
    settings: &NutsSettings,
    observer: &dyn SamplerObserver,
    resume: NutsResume,
) -> Result<NutsRun> {
    let NutsResume { finished, logs } = resume;
    validate(settings)?;
    let dim = model.dim();
    let init = model.initial_point();
    let mut grad = vec![0.0; dim];
    let ln_p0 = model.ln_density_grad(&init, &mut grad);
    if !ln_p0.is_finite() {
        if let Some(why) = model.explain_non_finite(&init) {
            return invalid!("the log density is {ln_p0} at the sampler's starting point: {why}");
        }
        let shown: Vec<String> = init.iter().take(6).map(|v| format!("{v}")).collect();
        return invalid!(
            "the log density is {ln_p0} at the initial point (unconstrained [{}{}]); \
             check the data and that the priors' supports contain plausible values",
            shown.join(", "),
            if dim > 6 { ", ..." } else { "" }
        );
    }
    let n_names = model.param_names().len();
    for r in &finished {
        if r.chain >= settings.chains || r.draws.len() != settings.draws as usize * n_names {
            return invalid!(
                "NUTS: a saved chain ({}, {} values) does not fit this run ({} chains x {} draws x {n_names}); \
                 start afresh without resuming",
                r.chain,
                r.draws.len(),
                settings.chains,
                settings.draws
            );
        }
    }
    observer.on_start(settings.chains, settings.tune + settings.draws);
    let outputs: Vec<Result<ChainRecord>> = (0..settings.chains)
        .into_par_iter()
        .map(|chain| match finished.iter().find(|r| r.chain == chain) {
            Some(r) => Ok(r.clone()),
            None => {
                let replay = logs
                    .iter()
                    .find(|l| l.chain == chain)
                    .map_or(&[][..], |l| &l.values[..]);
                let record = run_chain(model, settings, chain, &init, observer, replay)?;
                if record.stats.diverging.len() == settings.draws as usize {
                    observer.on_chain_done(&record);
                }
                Ok(record)
            }
        })
        .collect();
    observer.on_finish();
    let mut outputs: Vec<ChainRecord> = outputs.into_iter().collect::<Result<_>>()?;
    // A stopped run keeps the chains that got past tuning, each cut to the
    // number of draws all of them reached.
    outputs.retain(|o| !o.stats.diverging.is_empty());
    let n_kept = outputs.iter().map(|o| o.stats.diverging.len()).min().unwrap_or(0);
    if n_kept == 0 {
        return invalid!("NUTS: stopped before any chain finished tuning; nothing to keep");
    }
    let n_chains = outputs.len();
    let mut draws = Vec::with_capacity(n_chains * n_kept * n_names);
    let mut stats = NutsDrawStats::default();
    let mut tune_divergences = 0;
    let mut grad_evals = 0;
    for mut out in outputs {
        grad_evals += out.grad_evals;
        out.draws.truncate(n_kept * n_names);
        out.stats.truncate(n_kept);
        draws.extend_from_slice(&out.draws);
        tune_divergences += out.tune_divergences;
        stats.diverging.extend(out.stats.diverging);
        stats.tree_depth.extend(out.stats.tree_depth);
        stats.max_depth_reached.extend(out.stats.max_depth_reached);
        stats.step_size.extend(out.stats.step_size);
        stats.energy.extend(out.stats.energy);
        stats.acceptance.extend(out.stats.acceptance);
        stats.n_steps.extend(out.stats.n_steps);
    }
    Ok(NutsRun {
        trace: Trace {
            param_names: model.param_names(),
            n_chains,
            n_draws: n_kept,
            draws,
        },
        stats,
        stopped_early: n_kept < settings.draws as usize || n_chains < settings.chains,
        tune_divergences,
        grad_evals,
        settings: settings.clone(),
    })
}

fn run_chain<M: SampleableModel + ?Sized>(
    model: &M,
    settings: &NutsSettings,
    chain: usize,
    init: &[f64],
    observer: &dyn SamplerObserver,
    replay: &[f64],
) -> Result<ChainRecord> {
    let grad_evals = AtomicU64::new(0);
    let dim = init.len();
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(derive_seed(settings.seed, 1000 + chain as u64));
    // Jitter the start; redraw where the density is not finite.
    let mut start = init.to_vec();
    let mut grad = vec![0.0; dim];
    for attempt in 0.. {
        for (s, &i0) in start.iter_mut().zip(init) {
            *s = i0 + settings.init_jitter * (2.0 * rng.random::<f64>() - 1.0);
        }
        if model.ln_density_grad(&start, &mut grad).is_finite() {
            break;
        }
        if attempt == 100 {
            return invalid!(
                "NUTS chain {chain}: the log density is not finite at 100 jittered starting points; \
                 reduce the jitter or check the model"
            );
        }
    }
    let diverged = AtomicBool::new(false);
    let log = observer
        .wants_chain_logs()
        .then(|| Mutex::new(Vec::with_capacity(replay.len())));
    let adapter = NutsAdapter {
        model,
        dim,
        grad_evals: &grad_evals,
        replay,
        cursor: 0,
        diverged: &diverged,
        log: log.as_ref(),
    };
    let replay_diverged = || {
        nuts_error(
            chain,
            "resuming from the checkpoint, the chain asked for the density at another point than \
             the logged run did (the program, the data or the machine changed since): delete the \
             checkpoint and start afresh",
        )
    };
    let n_names = model.param_names().len();
    let draws_per_chain = settings.draws as usize;
    let mut out = ChainRecord {
        chain,
        draws: Vec::with_capacity(draws_per_chain * n_names),
        stats: NutsDrawStats::default(),
        tune_divergences: 0,
        grad_evals: 0,
    };
    let mut natural = vec![0.0; n_names];
    // One loop for either mass matrix: nuts-rs's two settings types make
    // chains (and statistics) of different types with the same fields.
    macro_rules! sample_with {
        ($settings:ty) => {{
            let mut nuts = <$settings>::default();
            nuts.num_tune = settings.tune;
            nuts.num_draws = settings.draws;
            nuts.maxdepth = settings.max_depth;
            nuts.num_chains = settings.chains;
            nuts.seed = settings.seed;
            nuts.adapt_options.step_size_settings.target_accept = settings.target_accept;
            let mut sampler = nuts
                .new_chain(chain as u64, CpuMath::new(adapter), &mut rng)
                .map_err(|e| nuts_error(chain, e))?;
            sampler.set_position(&start).map_err(|e| nuts_error(chain, e))?;
            for _ in 0..settings.tune + settings.draws {
                if observer.should_stop() {
                    break;
                }
                let (position, _, stats, progress) =
                    sampler.expanded_draw().map_err(|e| nuts_error(chain, e))?;
                if diverged.load(Ordering::Relaxed) {
                    return Err(replay_diverged());
                }
                observer.on_draw(chain, progress.tuning, progress.diverging);
                if let Some(log) = &log
                    && observer.chain_log_due(chain)
                {
                    observer.on_chain_log(chain, &log.lock().expect("chain log lock"));
                }
                if progress.tuning {
                    out.tune_divergences += usize::from(progress.diverging);
                    continue;
                }
                model.to_natural(&position, &mut natural);
                out.draws.extend_from_slice(&natural);
                let s = &mut out.stats;
                s.diverging.push(progress.diverging);
                s.tree_depth.push(stats.depth);
                s.max_depth_reached.push(stats.maxdepth_reached);
                s.step_size.push(progress.step_size);
                s.energy.push(stats.point.energy);
                s.acceptance.push(stats.adapt.step_size.mean_tree_accept);
                s.n_steps.push(progress.num_steps);
            }
        }};
    }
    match settings.mass_matrix {
        MassMatrix::Diag => sample_with!(DiagNutsSettings),
        MassMatrix::LowRank => sample_with!(LowRankNutsSettings),
    }
    out.grad_evals = grad_evals.load(Ordering::Relaxed);
    Ok(out)
}
