//! Hyper-likelihoods ln L(theta) of the population parameters.

use rayon::prelude::*;

use crate::data::catalog::SampleCatalog;
use crate::error::Result;
use crate::invalid;
use crate::likelihood::fused::{BLOCK_OUT, FusedStore, SampleStorage, StoredSamples};
use crate::likelihood::log_sum::LnSum;
use crate::math::fastmath::{
    Isa, LANES, available_isas, dot_lanes, exp_shifted_sum_padded, isa, subtract_const_max_lanes,
    subtract_max_lanes,
};
use crate::model::population::{Feature, KernelForm, MAX_PARAMS, PopulationModel};

/// ln L(theta) and its gradient, in natural units of theta.
pub trait HyperLikelihood: Send + Sync {
    fn param_names(&self) -> Vec<String>;

    fn n_params(&self) -> usize {
        self.param_names().len()
    }

    fn ln_likelihood(&self, theta: &[f64]) -> f64;

    /// Returns ln L and writes d ln L / d theta into `grad`.
    fn ln_likelihood_grad(&self, theta: &[f64], grad: &mut [f64]) -> f64;

    /// Where ln L is -inf or NaN at theta, which term made it so (an
    /// object's index, the offending value, and why), for the error a user
    /// reads; None when it is finite or nothing more specific is known.
    fn explain_non_finite(&self, theta: &[f64]) -> Option<String> {
        let _ = theta;
        None
    }
}

/// Why an object's ln L_i is not finite, from ln p at its `values` and its
/// ln pi (`ln_prior(j)`); None when it is finite. The caller names the object.
pub(crate) fn explain_object(
    values: &[f64],
    ln_p: &[f64],
    ln_prior: impl Fn(usize) -> f64,
) -> Option<String> {
    let mut max = f64::NEG_INFINITY;
    for (j, &l) in ln_p.iter().enumerate() {
        let w = l - ln_prior(j);
        if w.is_nan() {
            return Some(format!(
                "the population's ln density is NaN at its sample {j} (value {})",
                short(values[j])
            ));
        }
        max = max.max(w);
    }
    if max > f64::NEG_INFINITY && max < f64::INFINITY {
        return None;
    }
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    let big = lo.abs().max(hi.abs());
    let hint = if big > 1e150 {
        ": values this large overflow the density's arithmetic (their squares are infinite); rescale the \
         data, e.g. to log10 units"
    } else if ln_p.iter().all(|l| *l == f64::NEG_INFINITY) {
        ": the population density underflows to 0 at every one of them; check the data's units or widen \
         the priors so the population can reach them"
    } else {
        ""
    };
    Some(format!(
        "ln L_i = {max} (its {} samples lie from {} to {}){hint}",
        values.len(),
        short(lo),
        short(hi)
    ))
}

/// A value as a person reads it: scientific notation when very large or small.
pub(crate) fn short(v: f64) -> String {
    if v != 0.0 && !(1e-4..1e6).contains(&v.abs()) {
        format!("{v:.6e}")
    } else {
        format!("{v}")
    }
}

/// Objects are summed in at most this many fixed blocks. The blocks depend
/// only on the catalog, never on the thread count, so the floating-point
/// sum is the same on 1 thread or 64.
const MAX_BLOCKS: usize = 128;
/// Samples per block to aim for: large enough to amortise a rayon task,
/// small enough to balance two cores on a demo-sized catalog.
const TARGET_BLOCK_SAMPLES: usize = 8192;
/// Below this many samples the evaluation runs on the calling thread.
const PARALLEL_MIN_SAMPLES: usize = 32_768;
/// Samples per inner chunk (stack buffers), and the gradient buffer size.
const CHUNK: usize = 512;
const GRAD_BUF: usize = 2048;

/// exp(old_max - new_max) for rescaling running sums; exactly 0 on an
/// object's first chunk without calling exp.
#[inline(always)]
fn rescale_factor(old_max: f64, new_max: f64) -> f64 {
    if old_max == f64::NEG_INFINITY {
        0.0
    } else {
        (old_max - new_max).exp()
    }
}

/// The importance-sampled hyper-likelihood over per-object posterior samples
/// (Hogg, Myers & Bovy 2010):
///
/// ln L_i = logsumexp_j [ln p(mu_ij|theta) - ln pi(mu_ij)] - ln S_i,
/// ln L = sum_i ln L_i,
///
/// optionally with the variance (bias) correction of
/// [`with_bias_correction`](ImportanceLikelihood::with_bias_correction).
///
/// Each object is reduced in chunks with a running logsumexp, so any number
/// of samples fits in fixed stack buffers; objects are grouped into blocks
/// evaluated in parallel and summed in block order.
pub struct ImportanceLikelihood<'c, M> {
    catalog: &'c SampleCatalog,
    model: M,
    /// Object ranges [start, end) of each block.
    blocks: Vec<(usize, usize)>,
    /// ln S_i summed over objects: a constant, added once.
    sum_ln_n_samples: f64,
    parallel: bool,
    bias_correction: bool,
    /// Subtract N ln Z of an unnormalised model (off when a
    /// `likelihood::population::PopulationLikelihood` owns the normalisation).
    normalise: bool,
    /// The fused single-pass kernel's storage, for models quadratic in
    /// the value; `None`: the general kernel.
    fused_storage: Option<SampleStorage>,
    /// Its copy of the samples, made at the first evaluation (so that
    /// choosing a storage never holds two copies at once).
    fused: std::sync::OnceLock<Option<FusedStore>>,
    /// Which compiled copy of the kernels runs (see [`Self::with_isa`]).
    isa: Isa,
}

impl<'c, M: PopulationModel> ImportanceLikelihood<'c, M> {
    pub fn new(catalog: &'c SampleCatalog, model: M) -> Result<Self> {
        if model.dim() != catalog.dim() {
            return invalid!(
                "population model is {}-dimensional but the catalog's samples have dimension {}",
                model.dim(),
                catalog.dim()
            );
        }
        if model.n_params() > MAX_PARAMS {
            return invalid!(
                "population model has {} hyperparameters; at most {MAX_PARAMS} are supported",
                model.n_params()
            );
        }
        let total = catalog.total_samples();
        let n_blocks = total
            .div_ceil(TARGET_BLOCK_SAMPLES)
            .clamp(1, MAX_BLOCKS.min(catalog.n_obj()));
        let per_block = total.div_ceil(n_blocks);
        let offsets = catalog.offsets();
        let mut blocks = Vec::with_capacity(n_blocks);
        let mut start = 0;
        // Cut at the first object boundary past each multiple of per_block.
        for b in 1..=n_blocks {
            if start == catalog.n_obj() {
                break;
            }
            let end = if b == n_blocks {
                catalog.n_obj()
            } else {
                let target = b * per_block;
                let mut e = start + 1;
                while e < catalog.n_obj() && offsets[e] < target {
                    e += 1;
                }
                // Whole groups of eight for the fused kernel (see fused.rs).
                (start + (e - start).next_multiple_of(LANES)).min(catalog.n_obj())
            };
            blocks.push((start, end));
            start = end;
        }
        let sum_ln_n_samples = (0..catalog.n_obj())
            .map(|i| (catalog.n_samples(i) as f64).ln())
            .sum();
        Ok(Self {
            catalog,
            blocks,
            sum_ln_n_samples,
            parallel: total >= PARALLEL_MIN_SAMPLES,
            bias_correction: false,
            normalise: true,
            fused_storage: (model.kernel_feature().is_some() && catalog.dim() == 1)
                .then_some(SampleStorage::F64),
            fused: std::sync::OnceLock::new(),
            isa: isa(),
            model,
        })
    }

    /// Runs the kernels' copy for `isa` instead of the widest this CPU has
    /// (or the one POPINF_ISA names): the tests check every copy the CPU
    /// can run in one process. Every copy gives the same numbers up to the
    /// rounding of FMA (the vector copies, bit for bit, each other's).
    pub fn with_isa(mut self, isa: Isa) -> Result<Self> {
        if !isa.is_available() {
            return invalid!(
                "this CPU cannot run the {} copy of the kernels (it has {}); choose one of {}",
                isa.name(),
                available_isas()[0].name(),
                available_isas()
                    .iter()
                    .map(|i| i.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        self.isa = isa;
        Ok(self)
    }

    /// The first object whose ln L_i is not finite at theta: its index in
    /// this catalog and why.
    pub fn explain_first_bad_object(&self, theta: &[f64]) -> Option<(usize, String)> {
        let mut ln_p = Vec::new();
        for i in 0..self.catalog.n_obj() {
            let obj = self.catalog.object(i);
            ln_p.resize(obj.n_samples(), 0.0);
            self.model.ln_pdf_batch(theta, obj.values, &mut ln_p);
            if let Some(why) = explain_object(obj.values, &ln_p, |j| obj.ln_prior(j)) {
                return Some((i, why));
            }
        }
        None
    }

    /// The instruction set whose copy of the kernels runs.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Streams the samples as float32 (see [`SampleStorage::F32`]) or
    /// float64. Float32 needs a model the fused kernel handles (one whose
    /// ln p is quadratic in the value: the Gaussian).
    pub fn with_storage(mut self, storage: SampleStorage) -> Result<Self> {
        storage.check(self.fused_storage.is_some(), "this model")?;
        if self.fused_storage.is_some() && self.fused_storage != Some(storage) {
            self.fused_storage = Some(storage);
            self.fused = std::sync::OnceLock::new();
        }
        Ok(self)
    }

    /// Uses the general chunked kernel even where the fused one applies
    /// (the straightforward implementation the fused one is checked
    /// against, and the bench's comparison).
    pub fn without_fused_kernel(mut self) -> Self {
        self.fused_storage = None;
        self.fused = std::sync::OnceLock::new();
        self
    }

    /// The storage the kernel streams, `None` for the general kernel
    /// (which reads the catalog's float64 values).
    pub fn storage(&self) -> Option<SampleStorage> {
        self.fused_storage
    }

    /// The fused kernel's store, made on first use.
    fn fused(&self) -> Option<&FusedStore> {
        let storage = self.fused_storage?;
        let feature = self.model.kernel_feature()?;
        self.fused
            .get_or_init(|| {
                FusedStore::new(
                    self.catalog,
                    storage,
                    &self.blocks,
                    feature,
                    self.model.kernel_support(),
                )
            })
            .as_ref()
    }

    /// The model's kernel form at theta (a quadratic centred) for the fused
    /// kernel; `None` sends the evaluation to the general kernel.
    fn kernel_form(&self, theta: &[f64]) -> Option<KernelForm> {
        let mut form = KernelForm::default();
        if !self.model.kernel_form(theta, &mut form) {
            return None;
        }
        let form = match form.feature {
            Feature::Square if form.terms == 1 => form.centred(self.model.n_params())?,
            _ => form,
        };
        form.is_usable().then_some(form)
    }

    /// The samples as the kernel streams them.
    pub fn stored_samples(&self) -> StoredSamples<'_> {
        match self.fused() {
            Some(fused) => fused.stored(),
            None => StoredSamples::F64(self.catalog.values()),
        }
    }

    /// Adds to each ln L_i half its estimated variance,
    /// sigma_i^2 / 2 = (1/ESS_i - 1/S_i) / 2.
    ///
    /// ln of an unbiased estimate of L_i is biased low by about half its
    /// variance (the delta method), and that variance shrinks as the
    /// population broadens, so the plain estimator pulls population widths
    /// up. On the notebook's toy (S = 100, Var(ln L) ~ 10) the pull is
    /// ~0.8 posterior sd in theta_sigma; the correction removes the leading
    /// term, leaving O(1/S^2).
    pub fn with_bias_correction(mut self, on: bool) -> Self {
        self.bias_correction = on;
        self
    }

    /// ln L without the -N ln Z of an unnormalised model: the sum over
    /// objects of ln of the mean of f / pi.
    pub fn without_normalisation(mut self) -> Self {
        self.normalise = false;
        self
    }

    pub fn bias_correction(&self) -> bool {
        self.bias_correction
    }

    pub fn catalog(&self) -> &SampleCatalog {
        self.catalog
    }

    pub fn model(&self) -> &M {
        &self.model
    }

    /// Runs `block_fn(block, out)` over every block, in parallel when the
    /// catalog is large, each writing `stride` numbers; then sums the
    /// per-block results in block order into `total`.
    fn reduce_blocks<F>(&self, stride: usize, total: &mut [f64], block_fn: F)
    where
        F: Fn((usize, usize), &mut [f64]) + Sync,
    {
        let mut partials = [0.0f64; MAX_BLOCKS * (MAX_PARAMS + 1)];
        let partials = &mut partials[..self.blocks.len() * stride];
        if self.parallel {
            partials
                .par_chunks_mut(stride)
                .zip(self.blocks.par_iter())
                .for_each(|(out, &block)| block_fn(block, out));
        } else {
            for (out, &block) in partials.chunks_mut(stride).zip(&self.blocks) {
                block_fn(block, out);
            }
        }
        total.fill(0.0);
        for part in partials.chunks(stride) {
            for (t, p) in total.iter_mut().zip(part) {
                *t += p;
            }
        }
    }

    /// Number of consecutive objects from `i` (before `end`, at most `max`)
    /// that have exactly one sample.
    #[inline(always)]
    fn single_sample_run(&self, i: usize, end: usize, max: usize) -> usize {
        let offsets = self.catalog.offsets();
        let mut e = i;
        while e < end && e - i < max && offsets[e + 1] - offsets[e] == 1 {
            e += 1;
        }
        e - i
    }

    /// sum over objects in `block` of logsumexp_j ln w_ij (without -ln S_i),
    /// with the whole kernel (model included) compiled for AVX-512 or AVX2
    /// where the CPU has it.
    fn block_value(&self, theta: &[f64], block: (usize, usize)) -> f64 {
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: self.isa is available (isa(), with_isa checked).
            Isa::Avx512 => unsafe { self.block_value_avx512(theta, block) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Isa::Avx2 => unsafe { self.block_value_avx2(theta, block) },
            _ => self.block_value_body(theta, block),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
    fn block_value_avx512(&self, theta: &[f64], block: (usize, usize)) -> f64 {
        self.block_value_body(theta, block)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn block_value_avx2(&self, theta: &[f64], block: (usize, usize)) -> f64 {
        self.block_value_body(theta, block)
    }

    fn block_value_grad(&self, theta: &[f64], block: (usize, usize), grad: &mut [f64]) -> f64 {
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: self.isa is available (isa(), with_isa checked).
            Isa::Avx512 => unsafe { self.block_value_grad_avx512(theta, block, grad) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Isa::Avx2 => unsafe { self.block_value_grad_avx2(theta, block, grad) },
            _ => self.block_value_grad_body(theta, block, grad),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
    fn block_value_grad_avx512(&self, theta: &[f64], block: (usize, usize), grad: &mut [f64]) -> f64 {
        self.block_value_grad_body(theta, block, grad)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn block_value_grad_avx2(&self, theta: &[f64], block: (usize, usize), grad: &mut [f64]) -> f64 {
        self.block_value_grad_body(theta, block, grad)
    }

    /// Sum of ln p - ln pi over a run of single-sample objects starting at
    /// object `i` (for them ln L_i is ln w_i itself, so a whole run goes
    /// through the model at once); adds the run's gradient when `grad` is
    /// given.
    #[inline(always)]
    fn single_sample_block(
        &self,
        theta: &[f64],
        i: usize,
        run: usize,
        ln_w: &mut [f64],
        g: &mut [f64],
        grad: Option<&mut [f64]>,
    ) -> f64 {
        let dim = self.catalog.dim();
        let (a, b) = (self.catalog.offsets()[i], self.catalog.offsets()[i + run]);
        let values = &self.catalog.values()[a * dim..b * dim];
        let buf = &mut ln_w[..run];
        match grad {
            None => self.model.ln_pdf_batch(theta, values, buf),
            Some(grad) => {
                let gbuf = &mut g[..run * grad.len()];
                self.model.ln_pdf_grad_batch(theta, values, buf, gbuf);
                for (k, gk) in grad.iter_mut().enumerate() {
                    *gk += gbuf[k * run..(k + 1) * run].iter().sum::<f64>();
                }
            }
        }
        match self.catalog.ln_interim_prior_range(a, b) {
            Some(ln_prior) => buf.iter().zip(ln_prior).map(|(w, p)| w - p).sum(),
            None => {
                let c = self
                    .catalog
                    .flat_ln_prior()
                    .expect("flat when no per-sample column");
                buf.iter().map(|w| w - c).sum()
            }
        }
    }

    #[inline(always)]
    fn block_value_body(&self, theta: &[f64], (start, end): (usize, usize)) -> f64 {
        let dim = self.catalog.dim();
        let mut ln_w = [0.0f64; CHUNK];
        let mut total = 0.0;
        let mut ln_sum = LnSum::default();
        let mut i = start;
        while i < end {
            let run = self.single_sample_run(i, end, CHUNK);
            if run > 0 {
                total += self.single_sample_block(theta, i, run, &mut ln_w, &mut [], None);
                i += run;
                continue;
            }
            let obj = self.catalog.object(i);
            i += 1;
            let n = obj.n_samples();
            // Running sums of w and w^2, both scaled by exp(-run_max).
            let (mut run_max, mut w1, mut w2) = (f64::NEG_INFINITY, 0.0, 0.0);
            let mut c0 = 0;
            while c0 < n {
                let c1 = (c0 + CHUNK).min(n);
                let len = c1 - c0;
                let values = &obj.values[c0 * dim..c1 * dim];
                self.model.ln_pdf_batch(theta, values, &mut ln_w[..len]);
                let chunk_max = match obj.constant_ln_interim_prior {
                    Some(c) => subtract_const_max_lanes(&mut ln_w[..len], c),
                    None => subtract_max_lanes(&mut ln_w[..len], &obj.ln_interim_prior[c0..c1]),
                };
                let new_max = run_max.max(chunk_max);
                if new_max == f64::NEG_INFINITY {
                    c0 = c1;
                    continue;
                }
                let chunk_sum = exp_shifted_sum_padded(&mut ln_w, len, new_max);
                let buf = &ln_w[..len];
                let rescale = rescale_factor(run_max, new_max);
                w1 = w1 * rescale + chunk_sum;
                if self.bias_correction {
                    w2 = w2 * rescale * rescale + dot_lanes(buf, buf);
                }
                run_max = new_max;
                c0 = c1;
            }
            ln_sum.add(run_max, w1);
            // (No weight at all: ln L_i = -inf, and the correction 0/0 would
            // make it NaN.)
            if self.bias_correction && w1 > 0.0 {
                total += 0.5 * (w2 / (w1 * w1) - 1.0 / n as f64);
            }
        }
        total + ln_sum.finish()
    }

    /// As `block_value_body`, and writes sum_i d ln L_i / d theta into
    /// `grad`: sum_j wbar_ij d ln p_ij / d theta, plus the derivative of the
    /// bias correction when it is on.
    #[inline(always)]
    fn block_value_grad_body(&self, theta: &[f64], (start, end): (usize, usize), grad: &mut [f64]) -> f64 {
        let dim = self.catalog.dim();
        let n_params = grad.len();
        // A multiple of the lane count, so padding a chunk stays in the buffer.
        let chunk = CHUNK.min(GRAD_BUF / n_params.max(1)) / LANES * LANES;
        let mut ln_w = [0.0f64; CHUNK];
        let mut w_sq = [0.0f64; CHUNK];
        let mut g = [0.0f64; GRAD_BUF];
        // sum_j w_j g_jk and sum_j w_j^2 g_jk for the current object.
        let mut w1g = [0.0f64; MAX_PARAMS];
        let mut w2g = [0.0f64; MAX_PARAMS];
        let (w1g, w2g) = (&mut w1g[..n_params], &mut w2g[..n_params]);
        grad.fill(0.0);
        let mut total = 0.0;
        let mut ln_sum = LnSum::default();
        let mut i = start;
        while i < end {
            let run = self.single_sample_run(i, end, chunk);
            if run > 0 {
                total += self.single_sample_block(theta, i, run, &mut ln_w, &mut g, Some(grad));
                i += run;
                continue;
            }
            let obj = self.catalog.object(i);
            i += 1;
            let n = obj.n_samples();
            let (mut run_max, mut w1, mut w2) = (f64::NEG_INFINITY, 0.0, 0.0);
            w1g.fill(0.0);
            w2g.fill(0.0);
            let mut c0 = 0;
            while c0 < n {
                let c1 = (c0 + chunk).min(n);
                let len = c1 - c0;
                let gbuf = &mut g[..len * n_params];
                let values = &obj.values[c0 * dim..c1 * dim];
                self.model
                    .ln_pdf_grad_batch(theta, values, &mut ln_w[..len], gbuf);
                let chunk_max = match obj.constant_ln_interim_prior {
                    Some(c) => subtract_const_max_lanes(&mut ln_w[..len], c),
                    None => subtract_max_lanes(&mut ln_w[..len], &obj.ln_interim_prior[c0..c1]),
                };
                let new_max = run_max.max(chunk_max);
                if new_max == f64::NEG_INFINITY {
                    c0 = c1;
                    continue;
                }
                let chunk_sum = exp_shifted_sum_padded(&mut ln_w, len, new_max);
                let buf = &ln_w[..len];
                let rescale = rescale_factor(run_max, new_max);
                w1 = w1 * rescale + chunk_sum;
                for (k, acc) in w1g.iter_mut().enumerate() {
                    *acc = *acc * rescale + dot_lanes(buf, &gbuf[k * len..(k + 1) * len]);
                }
                if self.bias_correction {
                    let rescale2 = rescale * rescale;
                    let sq = &mut w_sq[..len];
                    for (s, w) in sq.iter_mut().zip(buf) {
                        *s = w * w;
                    }
                    w2 = w2 * rescale2 + dot_lanes(buf, buf);
                    for (k, acc) in w2g.iter_mut().enumerate() {
                        *acc = *acc * rescale2 + dot_lanes(sq, &gbuf[k * len..(k + 1) * len]);
                    }
                }
                run_max = new_max;
                c0 = c1;
            }
            ln_sum.add(run_max, w1);
            let inv_w1 = 1.0 / w1;
            for (gk, a) in grad.iter_mut().zip(w1g.iter()) {
                *gk += a * inv_w1;
            }
            if self.bias_correction && w1 > 0.0 {
                // d/dtheta of (1/2) W2 / W1^2, with dW1 = sum w g, dW2 = 2 sum w^2 g.
                let r = w2 * inv_w1 * inv_w1;
                total += 0.5 * (r - 1.0 / n as f64);
                for k in 0..n_params {
                    grad[k] += w2g[k] * inv_w1 * inv_w1 - r * w1g[k] * inv_w1;
                }
            }
        }
        total + ln_sum.finish()
    }
}

impl<M: PopulationModel> HyperLikelihood for ImportanceLikelihood<'_, M> {
    fn param_names(&self) -> Vec<String> {
        self.model.param_names()
    }

    fn n_params(&self) -> usize {
        self.model.n_params()
    }

    fn ln_likelihood(&self, theta: &[f64]) -> f64 {
        let mut total = [0.0];
        match self.fused() {
            Some(fused) if let Some(form) = self.kernel_form(theta) => {
                self.reduce_blocks(1, &mut total, |block, out| {
                    out[0] = if self.bias_correction {
                        fused.block::<false, true>(&form, block, self.isa)[0]
                    } else {
                        fused.block::<false, false>(&form, block, self.isa)[0]
                    }
                });
            }
            _ => self.reduce_blocks(1, &mut total, |block, out| {
                out[0] = self.block_value(theta, block)
            }),
        }
        if !self.normalise {
            return total[0] - self.sum_ln_n_samples;
        }
        let mut g_norm = [0.0f64; MAX_PARAMS];
        let ln_z = self
            .model
            .ln_norm_grad(theta, &mut g_norm[..self.model.n_params()]);
        total[0] - self.sum_ln_n_samples - self.catalog.n_obj() as f64 * ln_z
    }

    fn ln_likelihood_grad(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let p = self.model.n_params();
        let mut total = [0.0f64; MAX_PARAMS + 1];
        let total = &mut total[..p + 1];
        match self.fused() {
            Some(fused) if let Some(form) = self.kernel_form(theta) => {
                let mut sums = [0.0; BLOCK_OUT];
                self.reduce_blocks(BLOCK_OUT, &mut sums, |block, out| {
                    out.copy_from_slice(&if self.bias_correction {
                        fused.block::<true, true>(&form, block, self.isa)
                    } else {
                        fused.block::<true, false>(&form, block, self.isa)
                    })
                });
                total[0] = sums[0];
                // d/d theta_k = sum over terms of e_tk . M_t.
                for (t, e) in total[1..].iter_mut().zip(&form.e) {
                    *t = e[0][0] * sums[1] + e[0][1] * sums[2] + e[0][2] * sums[3];
                    for (term, m) in e[1..form.terms].iter().zip(sums[4..].chunks(3)) {
                        *t += term[0] * m[0] + term[1] * m[1] + term[2] * m[2];
                    }
                }
            }
            _ => self.reduce_blocks(p + 1, total, |block, out| {
                let (v, g) = out.split_first_mut().expect("stride is p + 1 >= 1");
                *v = self.block_value_grad(theta, block, g);
            }),
        }
        // The normalising constant of an unnormalised model, once per object.
        let mut g_norm = [0.0f64; MAX_PARAMS];
        let ln_z = if self.normalise {
            self.model.ln_norm_grad(theta, &mut g_norm[..p])
        } else {
            0.0
        };
        let n = self.catalog.n_obj() as f64;
        for k in 0..p {
            grad[k] = total[1 + k] - n * g_norm[k];
        }
        total[0] - self.sum_ln_n_samples - n * ln_z
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::gaussian::Gaussian;
    use rand::{RngExt, SeedableRng};

    /// A ragged catalog with a non-flat interim prior, and more samples in
    /// one object than a chunk holds, to exercise the running logsumexp.
    fn ragged_catalog() -> SampleCatalog {
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(7);
        let counts = [1usize, 1, 1, 3, 700, 50, 1, 1300, 2, 97];
        let mut samples = Vec::new();
        let mut ln_prior = Vec::new();
        for (i, &c) in counts.iter().enumerate() {
            let centre = i as f64 * 0.4 - 1.0;
            let s: Vec<f64> = (0..c)
                .map(|_| centre + 2.0 * (rng.random::<f64>() - 0.5))
                .collect();
            // An interim prior N(0, 3): ln pi varies sample to sample.
            ln_prior.push(s.iter().map(|x| -0.5 * (x / 3.0f64).powi(2)).collect());
            samples.push(s);
        }
        SampleCatalog::from_objects(&samples, Some(&ln_prior)).unwrap()
    }

    /// The obviously-correct computation: ln of the mean of linear weights,
    /// with libm's exp, one sample at a time (safe here: weights are O(1)).
    fn direct_ln_l(cat: &SampleCatalog, theta: [f64; 2], corrected: bool) -> f64 {
        let mut total = 0.0;
        for i in 0..cat.n_obj() {
            let obj = cat.object(i);
            let (mut sum, mut sum_sq) = (0.0, 0.0);
            for (j, x) in obj.values.iter().enumerate() {
                let lp = obj.ln_prior(j);
                let z: f64 = (x - theta[0]) / theta[1];
                let pdf = (-0.5 * z * z).exp() / (theta[1] * (2.0 * std::f64::consts::PI).sqrt());
                let w = pdf / lp.exp();
                sum += w;
                sum_sq += w * w;
            }
            let s = obj.n_samples() as f64;
            total += (sum / s).ln();
            if corrected {
                // (1/ESS - 1/S) / 2 with ESS = (sum w)^2 / sum w^2.
                total += 0.5 * (sum_sq / (sum * sum) - 1.0 / s);
            }
        }
        total
    }

    #[test]
    fn value_matches_direct_computation() {
        let cat = ragged_catalog();
        for (corrected, theta) in [false, true]
            .into_iter()
            .flat_map(|c| [[0.0, 1.0], [0.7, 0.4], [-1.3, 2.5]].map(|t| (c, t)))
        {
            let like = ImportanceLikelihood::new(&cat, Gaussian)
                .unwrap()
                .with_bias_correction(corrected);
            let got = like.ln_likelihood(&theta);
            let want = direct_ln_l(&cat, theta, corrected);
            assert!(
                ((got - want) / want).abs() < 1e-10,
                "theta {theta:?}: {got} vs {want}"
            );
            let mut grad = [0.0; 2];
            let got_vg = like.ln_likelihood_grad(&theta, &mut grad);
            assert!(
                ((got_vg - want) / want).abs() < 1e-10,
                "value of value+grad: {got_vg} vs {want}"
            );
        }
    }

    #[test]
    fn constant_interim_prior_matches_direct_computation() {
        // Every object's ln pi is one constant: the kernel's column-free path.
        let samples: Vec<Vec<f64>> = (0..5)
            .map(|i| (0..600).map(|j| (i * 600 + j) as f64 * 1e-3 - 1.5).collect())
            .collect();
        let ln_prior: Vec<Vec<f64>> = samples
            .iter()
            .enumerate()
            .map(|(i, s)| vec![-2.5 + i as f64; s.len()])
            .collect();
        let cat = SampleCatalog::from_objects(&samples, Some(&ln_prior)).unwrap();
        assert_eq!(cat.object(3).constant_ln_interim_prior, Some(0.5));
        let like = ImportanceLikelihood::new(&cat, Gaussian).unwrap();
        for theta in [[0.0, 1.0], [0.4, 0.3]] {
            let (got, want) = (like.ln_likelihood(&theta), direct_ln_l(&cat, theta, false));
            assert!(((got - want) / want).abs() < 1e-10, "{got} vs {want}");
        }
    }

    #[test]
    fn gradient_matches_central_differences() {
        let cat = ragged_catalog();
        for (corrected, theta) in [false, true]
            .into_iter()
            .flat_map(|c| [[0.0, 1.0], [0.7, 0.4], [-1.3, 2.5]].map(|t| (c, t)))
        {
            let like = ImportanceLikelihood::new(&cat, Gaussian)
                .unwrap()
                .with_bias_correction(corrected);
            let mut grad = [0.0; 2];
            like.ln_likelihood_grad(&theta, &mut grad);
            for k in 0..2 {
                let h = 1e-5;
                let (mut tp, mut tm) = (theta, theta);
                tp[k] += h;
                tm[k] -= h;
                let fd = (like.ln_likelihood(&tp) - like.ln_likelihood(&tm)) / (2.0 * h);
                // Central differences: O(h^2) truncation plus ~1e-16 |ln L| / h
                // rounding; both far below 1e-6 relative here.
                assert!(
                    (grad[k] - fd).abs() < 1e-6 * fd.abs().max(1.0),
                    "k={k}: {} vs {fd}",
                    grad[k]
                );
            }
        }
    }

    #[test]
    fn parallel_blocks_give_the_same_bits_as_one_thread() {
        // Large enough to take the parallel path, ragged to make uneven blocks.
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(3);
        let samples: Vec<Vec<f64>> = (0..900)
            .map(|i| {
                (0..(40 + i % 90))
                    .map(|_| rng.random::<f64>() * 4.0 - 2.0)
                    .collect()
            })
            .collect();
        let cat = SampleCatalog::from_objects(&samples, None).unwrap();
        let like = ImportanceLikelihood::new(&cat, Gaussian)
            .unwrap()
            .with_bias_correction(true);
        assert!(like.parallel && like.blocks.len() > 1);
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut g = [0.0; 2];
                let v = like.ln_likelihood_grad(&[0.1, 0.9], &mut g);
                (
                    v.to_bits(),
                    g[0].to_bits(),
                    g[1].to_bits(),
                    like.ln_likelihood(&[0.1, 0.9]).to_bits(),
                )
            })
        };
        assert_eq!(run(1), run(2));
        assert_eq!(run(1), run(3));
    }

    /// The AVX2 copy of the kernel (taken on this machine when it has AVX2)
    /// and the portable one give the same bits: the fixed lanes, not the
    /// vector width, set the order of additions.
    #[test]
    fn dispatched_kernel_equals_the_portable_one() {
        let cat = ragged_catalog();
        let like = ImportanceLikelihood::new(&cat, Gaussian)
            .unwrap()
            .with_bias_correction(true);
        let theta = [0.3, 0.8];
        for &block in &like.blocks {
            assert_eq!(
                like.block_value(&theta, block).to_bits(),
                like.block_value_body(&theta, block).to_bits()
            );
            let (mut g1, mut g2) = ([0.0; 2], [0.0; 2]);
            let v1 = like.block_value_grad(&theta, block, &mut g1);
            let v2 = like.block_value_grad_body(&theta, block, &mut g2);
            assert_eq!(
                (v1.to_bits(), g1.map(f64::to_bits)),
                (v2.to_bits(), g2.map(f64::to_bits))
            );
        }
    }

    #[test]
    fn rejects_mismatched_dimension() {
        let cat = SampleCatalog::new(2, vec![0.0, 1.0], vec![0.0], vec![0, 1]).unwrap();
        assert!(ImportanceLikelihood::new(&cat, Gaussian).is_err());
    }
}
