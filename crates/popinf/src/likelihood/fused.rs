//! The fused importance-sampling kernel for population models whose ln p
//! is a [`KernelForm`]: a sum of terms exp(c0 + c1 d + c2 f), d = x - x0,
//! f = d^2 (the Gaussian: one centred quadratic) or f = 10^d (the Schechter
//! family in x = log10 M: one term, or two for the double Schechter). One
//! pass over each object's samples computes the weights and every sum the
//! value and gradient need.
//!
//! Each term's gradient is e0_k + e1_k d + e2_k f, so per object only each
//! term's weighted sums of 1, d and f are needed, never a gradient per
//! sample; and since the e_k are the same for every object, a whole block
//! of objects reduces to 1 + 3 x terms numbers. For f = 10^d the store
//! keeps a column of 10^(x - lo_i) per sample (lo_i the object's smallest
//! sample), so f is one multiply by the object's 10^(lo_i - x0), not an
//! exp: the single Schechter costs one exp per sample, as the Gaussian
//! does, and the double two. The logsumexp shift is not found by a separate
//! pass: it is an upper bound on the weights known before the pass (each
//! term's maximum over the object's sample range, less the smallest ln pi),
//! so the samples are read once. Where the bound is so loose that the
//! scaled weights would lose precision (more than e^-230 below it), the
//! object gets an exact pass (its exact maximum). The weights are powers
//! of 2 (exponents times log2(e), folded into the coefficients; see
//! `fastmath::exp2_with`). Samples outside a model's support get weight 0
//! (ln pi raised by 2^34 in base 2), as ln p = -inf gives them in the
//! general kernel.
//!
//! The store keeps its own copy of the samples, laid out for the vector
//! lanes: eight consecutive objects with the same number of samples are
//! interleaved (sample j of the eight objects side by side), so lane l of
//! a vector works through object l from its first sample to its last. Per
//! object that leaves no horizontal sum, no part-empty tail vector and no
//! scalar division: the per-object work runs eight objects at a time. (With
//! one object per vector pass it cost ~40 cycles per object, a quarter of
//! the time at 100 samples per object.) Other objects are streamed one at
//! a time, sample j in lane j mod 8.

use crate::data::catalog::SampleCatalog;
use crate::likelihood::log_sum::LnSum;
use crate::math::fastmath::{
    Isa, LANES, LOG2E, MulAdd, Separate, exp_nonpositive_with, exp2_with, isa, sum_lanes,
};
use crate::model::population::{Feature, KernelForm, MAX_TERMS};
use std::f64::consts::{LN_2, LN_10};

/// How the fused kernel stores the samples it streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SampleStorage {
    /// A float64 copy of the values (and of ln pi less the object's
    /// smallest ln pi, when it varies): 8 bytes per sample beside the
    /// catalog's own.
    #[default]
    F64,
    /// A float32 copy, each value stored as its offset from the object's
    /// smallest sample and each ln pi from the object's smallest ln pi, so
    /// the rounding is relative to the spread of one object's samples, not
    /// to the values themselves; all arithmetic stays float64. Halves the
    /// memory read per evaluation and the copy's size.
    F32,
}

impl SampleStorage {
    /// Float32 needs the fused kernel, i.e. a population model with a
    /// kernel form (the Gaussian, the single and double Schechter); float64
    /// works with every model. `model` names it in the error.
    pub(crate) fn check(self, has_fused_kernel: bool, model: &str) -> crate::error::Result<()> {
        if self == SampleStorage::F32 && !has_fused_kernel {
            return crate::invalid!(
                "float32 sample storage (likelihood.storage = \"f32\", --f32) is available for the \
                 population models with a fused kernel only (gaussian, schechter, double_schechter); \
                 use float64 for {model}"
            );
        }
        Ok(())
    }

    /// As written in run files and bench output.
    pub fn name(self) -> &'static str {
        match self {
            SampleStorage::F64 => "f64",
            SampleStorage::F32 => "f32",
        }
    }
}

/// A scaled sum below this means the shift was too loose for the sums to
/// keep full precision; the object then gets the exact pass.
/// (e^-230: the bias correction's T0/S0^2, with T0 >= S0^2/n, then stays
/// far from float64's overflow and underflow.)
const TINY_SUM: f64 = 1e-100;
/// The most negative shift bound the vector loops take (see
/// `FusedStore::bound`): 2^40.
const BOUND_MIN: f64 = (1u64 << 40) as f64;

/// One object, or eight interleaved, as the kernel streams them.
#[derive(Debug, Clone, Copy)]
struct Item {
    /// The (first) object.
    first: usize,
    /// Samples per object.
    n: usize,
    /// Where its samples start in the store's arrays (a multiple of 8).
    at: usize,
    /// Eight objects, sample j of object first + l at at + 8 j + l; else
    /// one object, sample j at at + j.
    group: bool,
}

/// The samples in the kernel's layout, ln pi less the object's smallest,
/// in base 2 (times log2(e); empty when no object's ln pi varies), and for
/// f = 10^d forms 10^(x - lo_i) (empty otherwise).
struct Arrays<T> {
    values: Aligned<T>,
    ln_prior: Aligned<T>,
    exp10: Aligned<T>,
}

/// What [`Arrays::copy`] needs per object besides the catalog.
struct ObjectFacts<'a> {
    lo: &'a [f64],
    ln_prior_min: &'a [f64],
    constant_prior: &'a [bool],
    /// The support whose outside samples get weight 0.
    support: Option<(f64, f64)>,
    exp10: bool,
}

/// Added to ln pi (base 2) of a sample outside the model's support: its
/// weight 2^-(2^34) is exactly 0 on every engine (and far inside the range
/// where the vector exp2s are exact).
const OUTSIDE_SUPPORT: f64 = (1u64 << 34) as f64;
/// The largest 10^(x - lo) stored (a sample far outside the support).
const EXP10_MAX: f64 = 1e30;

impl<T: Stored> Arrays<T> {
    /// The samples (and ln pi deltas, in base 2) in the items' layout.
    fn copy(catalog: &SampleCatalog, items: &[Item], total: usize, facts: &ObjectFacts) -> Self {
        let has_column = facts.constant_prior.iter().any(|&c| !c);
        let mut values = Aligned::zeros(total);
        let mut ln_prior = Aligned::zeros(if has_column { total } else { 0 });
        let mut exp10 = Aligned::zeros(if facts.exp10 { total } else { 0 });
        for item in items.iter().filter(|item| item.n > 1) {
            let width = if item.group { LANES } else { 1 };
            for l in 0..width {
                let i = item.first + l;
                let obj = catalog.object(i);
                let lo = facts.lo[i];
                let base = if T::FROM_LO { lo } else { 0.0 };
                for (j, &v) in obj.values.iter().enumerate() {
                    let at = item.at + j * width + l;
                    values[at] = T::from_f64(v - base);
                    if facts.exp10 {
                        exp10[at] = T::from_f64(10f64.powf(v - lo).min(EXP10_MAX));
                    }
                }
                if !facts.constant_prior[i] {
                    let outside = |v: f64| facts.support.is_some_and(|(a, b)| !(v >= a && v <= b));
                    for (j, &v) in obj.values.iter().enumerate() {
                        let delta = (obj.ln_prior(j) - facts.ln_prior_min[i]) * LOG2E;
                        let delta = if outside(v) {
                            delta + OUTSIDE_SUPPORT
                        } else {
                            delta
                        };
                        ln_prior[item.at + j * width + l] = T::from_f64(delta);
                    }
                }
            }
        }
        Self {
            values,
            ln_prior,
            exp10,
        }
    }
}

/// A zeroed array starting on a cache line, so that no vector load of
/// eight values at a multiple of eight straddles two lines (measured:
/// ~5% of the kernel's time when every load did).
struct Aligned<T> {
    buf: Vec<T>,
    origin: usize,
}

impl<T: Stored> Aligned<T> {
    const LINE: usize = 64;

    fn zeros(len: usize) -> Self {
        let buf = vec![T::from_f64(0.0); len + Self::LINE / std::mem::size_of::<T>()];
        let origin = buf.as_ptr().align_offset(Self::LINE).min(buf.len() - len);
        Self { buf, origin }
    }
}

impl<T> std::ops::Deref for Aligned<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.buf[self.origin..]
    }
}

impl<T> std::ops::DerefMut for Aligned<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.buf[self.origin..]
    }
}

enum Data {
    F64(Arrays<f64>),
    F32(Arrays<f32>),
}

/// Per-object facts the kernel needs besides the samples (structure of
/// arrays), the order it streams the objects in, and the samples.
pub(crate) struct FusedStore {
    /// The feature of the forms the store serves (Exp10: it holds the
    /// 10^(x - lo) column).
    feature: Feature,
    /// Smallest and largest sample value per object (of the samples inside
    /// the support).
    lo: Vec<f64>,
    hi: Vec<f64>,
    /// Smallest ln pi per object (inside the support).
    ln_prior_min: Vec<f64>,
    /// Whether ln pi is one constant over the object (no column read).
    constant_prior: Vec<bool>,
    /// Objects with no sample inside the support (ln L = -inf), ascending.
    empty: Vec<usize>,
    /// Exp10: 10^(lo_i - lo_ref) (lo_ref the smallest lo), so the object's
    /// factor 10^(lo_i - x0) is one multiply by 10^(lo_ref - x0); and
    /// 10^(hi_i - lo_i). Empty otherwise.
    exp10_lo: Vec<f64>,
    exp10_span: Vec<f64>,
    lo_ref: f64,
    /// In object order; no group straddles a block.
    items: Vec<Item>,
    data: Data,
}

/// A sample value type the kernel can stream.
pub(crate) trait Stored: Copy + Send + Sync {
    /// Values are stored as offsets from the object's smallest sample.
    const FROM_LO: bool;
    fn get(self) -> f64;
    fn from_f64(v: f64) -> Self;
    /// Eight (four) values from `p` as float64.
    /// SAFETY: `p` must point at that many readable values, and the CPU
    /// must have AVX-512 (AVX2).
    #[cfg(target_arch = "x86_64")]
    unsafe fn load8(p: *const Self) -> std::arch::x86_64::__m512d;
    #[cfg(target_arch = "x86_64")]
    unsafe fn load4(p: *const Self) -> std::arch::x86_64::__m256d;
    /// The lanes set in `mask` from `p`, 0 elsewhere (reads only those).
    #[cfg(target_arch = "x86_64")]
    unsafe fn load8_tail(p: *const Self, mask: u8) -> std::arch::x86_64::__m512d;
}

impl Stored for f64 {
    const FROM_LO: bool = false;
    #[inline(always)]
    fn get(self) -> f64 {
        self
    }
    fn from_f64(v: f64) -> Self {
        v
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(p: *const Self) -> std::arch::x86_64::__m512d {
        unsafe { std::arch::x86_64::_mm512_loadu_pd(p) }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load4(p: *const Self) -> std::arch::x86_64::__m256d {
        unsafe { std::arch::x86_64::_mm256_loadu_pd(p) }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8_tail(p: *const Self, mask: u8) -> std::arch::x86_64::__m512d {
        unsafe { std::arch::x86_64::_mm512_maskz_loadu_pd(mask, p) }
    }
}

impl Stored for f32 {
    const FROM_LO: bool = true;
    #[inline(always)]
    fn get(self) -> f64 {
        self as f64
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(p: *const Self) -> std::arch::x86_64::__m512d {
        use std::arch::x86_64::*;
        unsafe { _mm512_cvtps_pd(_mm256_loadu_ps(p)) }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load4(p: *const Self) -> std::arch::x86_64::__m256d {
        use std::arch::x86_64::*;
        unsafe { _mm256_cvtps_pd(_mm_loadu_ps(p)) }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8_tail(p: *const Self, mask: u8) -> std::arch::x86_64::__m512d {
        use std::arch::x86_64::*;
        unsafe { _mm512_cvtps_pd(_mm256_maskz_loadu_ps(mask, p)) }
    }
}

/// Accumulators per lane: per term t, the sums of w_t, w_t d and w_t f
/// and, for the bias correction, of u_t = w w_t, u_t d and u_t f (w the
/// sample's whole weight, sum_t w_t; with one term u = w^2); all scaled by
/// 2^-shift.
const ACC: usize = 6 * MAX_TERMS;
/// A block's results: ln L, then per term M_t0, M_t1, M_t2.
pub(crate) const BLOCK_OUT: usize = 1 + 3 * MAX_TERMS;

/// One object's sums (see [`ACC`]).
pub(crate) type Sums = [f64; ACC];

/// The same sums for the eight objects of a group, one per lane.
type LaneSums = [[f64; LANES]; ACC];

/// A kernel form as the loops see it, fixed at compile time (one
/// monomorphised copy of the loops per shape).
pub(crate) trait Shape {
    /// Terms summed (1..=MAX_TERMS).
    const TERMS: usize;
    /// f = 10^d, read from the store's column (10^(x - lo_i), the object's
    /// factor folded into c2); else f = d^2.
    const EXP10: bool;
    /// Whether the terms have a c1 d part (else c1 = 0: a centred
    /// quadratic).
    const LINEAR: bool;
}

/// One centred quadratic: the Gaussian.
pub(crate) struct Quadratic;
/// K terms in d and 10^d: the single (K = 1) and double Schechter.
pub(crate) struct Schechter<const K: usize>;
/// Two quadratics in d: a two-component Gaussian mixture.
pub(crate) struct Mixture;

impl Shape for Quadratic {
    const TERMS: usize = 1;
    const EXP10: bool = false;
    const LINEAR: bool = false;
}

impl<const K: usize> Shape for Schechter<K> {
    const TERMS: usize = K;
    const EXP10: bool = true;
    const LINEAR: bool = true;
}

impl Shape for Mixture {
    const TERMS: usize = 2;
    const EXP10: bool = false;
    const LINEAR: bool = true;
}

/// One object's exponents in base 2, y_t = c1_t d + c2_t f + k_t - dpi
/// (c2 with the object's factor on the stored f folded in), before the
/// shift.
#[derive(Clone, Copy, Default)]
pub(crate) struct Coeffs {
    c1: [f64; MAX_TERMS],
    c2: [f64; MAX_TERMS],
    k: [f64; MAX_TERMS],
}

/// The same for a group, lane l for object l.
#[derive(Clone, Copy, Default)]
pub(crate) struct LaneCoeffs {
    c1: [f64; MAX_TERMS],
    c2: [[f64; LANES]; MAX_TERMS],
    k: [[f64; LANES]; MAX_TERMS],
}

impl LaneCoeffs {
    fn lane(&self, l: usize) -> Coeffs {
        let mut c = Coeffs {
            c1: self.c1,
            ..Default::default()
        };
        for t in 0..MAX_TERMS {
            c.c2[t] = self.c2[t][l];
            c.k[t] = self.k[t][l];
        }
        c
    }
}

/// What one evaluation's form gives every object: the coefficients in
/// base 2 and, for f = 10^d, each term's peak.
struct Eval {
    x0: f64,
    terms: usize,
    /// Natural c of each term, its c0 less the first term's.
    c: [[f64; 3]; MAX_TERMS],
    /// 10^(lo_ref - x0) (Exp10; 1 otherwise).
    scale: f64,
    /// Where each term peaks (-inf when it falls everywhere: c1 <= 0), and
    /// its value there.
    x_peak: [f64; MAX_TERMS],
    peak: [f64; MAX_TERMS],
}

impl Eval {
    fn new(form: &KernelForm, lo_ref: f64) -> Self {
        let mut e = Eval {
            x0: form.x0,
            terms: form.terms,
            c: form.c,
            scale: if form.feature == Feature::Exp10 {
                10f64.powf(lo_ref - form.x0)
            } else {
                1.0
            },
            x_peak: [f64::NEG_INFINITY; MAX_TERMS],
            peak: [f64::NEG_INFINITY; MAX_TERMS],
        };
        for t in 0..form.terms {
            e.c[t][0] = form.c[t][0] - form.c[0][0];
            let [c0, c1, c2] = e.c[t];
            if form.feature == Feature::Exp10 && c1 > 0.0 {
                // d/dd (c1 d + c2 10^d) = 0 at 10^d = -c1 / (c2 ln 10).
                let f = -c1 / (c2 * LN_10);
                let d = f.log10();
                e.x_peak[t] = form.x0 + d;
                e.peak[t] = c0 + c1 * d + c2 * f;
            }
        }
        e
    }
}

/// An object's share of the block's results besides ln S_i: the bias
/// correction 0.5 (r - 1/n) and per term m_t (see [`FusedStore::block`]);
/// `f_scale` the object's factor on the stored f (1 for d^2).
#[inline(always)]
fn object_terms<S: Shape, const GRAD: bool, const BIAS: bool>(
    a: &Sums,
    n: usize,
    f_scale: f64,
) -> (f64, [[f64; 3]; MAX_TERMS]) {
    let mut s0 = a[0];
    for t in 1..S::TERMS {
        s0 += a[6 * t];
    }
    let inv_s0 = 1.0 / s0;
    // With one term m_0 = 1 for every object (its bias term T0/S0^2 - r is
    // exactly 0), so M_0 is the object count, added at the end.
    let first = usize::from(S::TERMS == 1);
    let scale = |k: usize| if S::EXP10 && k == 2 { f_scale } else { 1.0 };
    let mut m = [[0.0; 3]; MAX_TERMS];
    if GRAD {
        for t in 0..S::TERMS {
            for k in first..3 {
                m[t][k] = a[6 * t + k] * inv_s0 * scale(k);
            }
        }
    }
    if !BIAS {
        return (0.0, m);
    }
    let mut t0 = a[3];
    for t in 1..S::TERMS {
        t0 += a[6 * t + 3];
    }
    let inv_s0_sq = inv_s0 * inv_s0;
    let r = t0 * inv_s0_sq;
    if GRAD {
        for t in 0..S::TERMS {
            for k in first..3 {
                m[t][k] = m[t][k] + a[6 * t + 3 + k] * scale(k) * inv_s0_sq - r * m[t][k];
            }
        }
    }
    (0.5 * (r - 1.0 / n as f64), m)
}

/// Kernel stores need objects no wider than this (in dex) for f = 10^d,
/// and the catalog's smallest values within 300 dex of each other, so
/// that every stored 10^(x - lo) and factor is finite in float32.
const EXP10_MAX_SPAN: f64 = 30.0;

impl FusedStore {
    /// `None` unless the catalog is one-dimensional (and, for f = 10^d,
    /// its objects narrower than 30 dex). `blocks` are the object ranges the
    /// kernel will be called on (groups stay inside one); samples outside
    /// `support` get weight 0.
    pub(crate) fn new(
        catalog: &SampleCatalog,
        storage: SampleStorage,
        blocks: &[(usize, usize)],
        feature: Feature,
        support: Option<(f64, f64)>,
    ) -> Option<Self> {
        if catalog.dim() != 1 {
            return None;
        }
        let inside = |v: f64| support.is_none_or(|(a, b)| v >= a && v <= b);
        let n_obj = catalog.n_obj();
        let (mut lo, mut hi) = (Vec::with_capacity(n_obj), Vec::with_capacity(n_obj));
        let (mut ln_prior_min, mut constant_prior) = (Vec::with_capacity(n_obj), Vec::with_capacity(n_obj));
        let mut empty = Vec::new();
        for i in 0..n_obj {
            let obj = catalog.object(i);
            let (mut l, mut h, mut p_min, mut all_inside) =
                (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, true);
            for (j, &v) in obj.values.iter().enumerate() {
                if inside(v) {
                    (l, h) = (l.min(v), h.max(v));
                    p_min = p_min.min(obj.ln_prior(j));
                } else {
                    all_inside = false;
                }
            }
            if l > h {
                // No sample inside: ln L = -inf; the values keep the store finite.
                empty.push(i);
                (l, h, p_min) = (obj.values[0], obj.values[0], 0.0);
            }
            lo.push(l);
            hi.push(h);
            ln_prior_min.push(p_min);
            constant_prior.push(obj.constant_ln_interim_prior.is_some() && all_inside);
        }
        let exp10 = feature == Feature::Exp10;
        let lo_ref = lo.iter().copied().fold(f64::INFINITY, f64::min);
        let (mut exp10_lo, mut exp10_span) = (Vec::new(), Vec::new());
        if exp10 {
            let lo_top = lo.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let widest = lo.iter().zip(&hi).map(|(l, h)| h - l).fold(0.0, f64::max);
            if !(widest <= EXP10_MAX_SPAN && lo_top - lo_ref <= 300.0) {
                return None;
            }
            exp10_lo = lo.iter().map(|l| 10f64.powf(l - lo_ref)).collect();
            exp10_span = lo.iter().zip(&hi).map(|(l, h)| 10f64.powf(h - l)).collect();
        }
        // Eight objects form a group when they have the same number of
        // samples (at least two: one sample needs no exp) and the same kind
        // of interim prior.
        let mut items = Vec::with_capacity(n_obj);
        let mut at = 0;
        for &(start, end) in blocks {
            let mut i = start;
            while i < end {
                let n = catalog.n_samples(i);
                let group = n >= 2
                    && i + LANES <= end
                    && (i + 1..i + LANES)
                        .all(|k| catalog.n_samples(k) == n && constant_prior[k] == constant_prior[i]);
                items.push(Item {
                    first: i,
                    n,
                    at,
                    group,
                });
                // Every item starts on a multiple of eight values; a single
                // sample is read from lo, not from the copy.
                let width = if group { LANES } else { 1 };
                if n > 1 {
                    at += (width * n).next_multiple_of(LANES);
                }
                i += width;
            }
        }
        let facts = ObjectFacts {
            lo: &lo,
            ln_prior_min: &ln_prior_min,
            constant_prior: &constant_prior,
            support,
            exp10,
        };
        let data = match storage {
            SampleStorage::F64 => Data::F64(Arrays::copy(catalog, &items, at, &facts)),
            SampleStorage::F32 => Data::F32(Arrays::copy(catalog, &items, at, &facts)),
        };
        Some(Self {
            feature,
            lo,
            hi,
            ln_prior_min,
            constant_prior,
            empty,
            exp10_lo,
            exp10_span,
            lo_ref,
            items,
            data,
        })
    }

    /// The sample values as the kernel streams them.
    pub(crate) fn stored(&self) -> StoredSamples<'_> {
        match &self.data {
            Data::F64(a) => StoredSamples::F64(&a.values),
            Data::F32(a) => StoredSamples::F32(&a.values),
        }
    }

    /// Over objects [start, end) (one of the blocks the store was built
    /// for): [sum_i ln L_i (without -ln S_i and without -ln Z), then per
    /// term M_t0, M_t1, M_t2], where the gradient of that sum is
    /// sum_t sum_m e_tmk M_tm. M_t = sum_i m_ti with m_ti = (S_t0, S_t1,
    /// S_t2) / S0 (S_t the term's weighted sums of 1, d, f; S0 = sum_t S_t0)
    /// and, with the bias correction, plus (U_t0, U_t1, U_t2) / S0^2 -
    /// r_i m_ti, r_i = T0 / S0^2. With one term M_0 is the object count.
    /// `form` must be usable ([`KernelForm::is_usable`]) and of the store's
    /// feature; `isa` picks the compiled copy, which the CPU must have.
    pub(crate) fn block<const GRAD: bool, const BIAS: bool>(
        &self,
        form: &KernelForm,
        block: (usize, usize),
        isa: Isa,
    ) -> [f64; BLOCK_OUT] {
        debug_assert!(isa.is_available());
        debug_assert!(form.is_usable() && form.feature == self.feature);
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the caller's isa is available (isa(), with_isa check).
            Isa::Avx512 => unsafe { self.block_avx512::<GRAD, BIAS>(form, block) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Isa::Avx2 => unsafe { self.block_avx2::<GRAD, BIAS>(form, block) },
            _ => self.block_body::<Scalar<Separate>, GRAD, BIAS>(form, block),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
    fn block_avx512<const GRAD: bool, const BIAS: bool>(
        &self,
        form: &KernelForm,
        block: (usize, usize),
    ) -> [f64; BLOCK_OUT] {
        self.block_body::<simd::Avx512, GRAD, BIAS>(form, block)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn block_avx2<const GRAD: bool, const BIAS: bool>(
        &self,
        form: &KernelForm,
        block: (usize, usize),
    ) -> [f64; BLOCK_OUT] {
        self.block_body::<simd::Avx2, GRAD, BIAS>(form, block)
    }

    /// The body of every copy, over the vector loops of `E`: explicit
    /// AVX-512 or AVX2 vectors, or [`Scalar`] (portable; with [`Fused`] it
    /// is the exact scalar definition of what the vector engines compute,
    /// lane for lane, and they must match it bit for bit).
    #[inline(always)]
    pub(crate) fn block_body<E: Engine, const GRAD: bool, const BIAS: bool>(
        &self,
        form: &KernelForm,
        block: (usize, usize),
    ) -> [f64; BLOCK_OUT] {
        // One monomorphised body per storage and shape, chosen once per block.
        macro_rules! by_shape {
            ($arrays:expr, $t:ty) => {
                match (form.feature, form.terms) {
                    (Feature::Square, 1) => {
                        self.block_typed::<E, $t, Quadratic, GRAD, BIAS>($arrays, form, block)
                    }
                    (Feature::Square, _) => {
                        self.block_typed::<E, $t, Mixture, GRAD, BIAS>($arrays, form, block)
                    }
                    (Feature::Exp10, 1) => {
                        self.block_typed::<E, $t, Schechter<1>, GRAD, BIAS>($arrays, form, block)
                    }
                    (Feature::Exp10, _) => {
                        self.block_typed::<E, $t, Schechter<2>, GRAD, BIAS>($arrays, form, block)
                    }
                }
            };
        }
        match &self.data {
            Data::F64(a) => by_shape!(a, f64),
            Data::F32(a) => by_shape!(a, f32),
        }
    }

    #[inline(always)]
    fn block_typed<E: Engine, T: Stored, S: Shape, const GRAD: bool, const BIAS: bool>(
        &self,
        arrays: &Arrays<T>,
        form: &KernelForm,
        (start, end): (usize, usize),
    ) -> [f64; BLOCK_OUT] {
        let mut out = [0.0; BLOCK_OUT];
        if self.empty.partition_point(|&i| i < start) < self.empty.partition_point(|&i| i < end) {
            // An object with no sample inside the support: ln L = -inf.
            out[0] = f64::NEG_INFINITY;
            return out;
        }
        debug_assert!(S::TERMS == form.terms);
        let ev = Eval::new(form, self.lo_ref);
        let c0 = form.c[0][0];
        // The loops work in base 2 (see fastmath::exp2_with): exponents
        // y_t = (c1_t d + c2_t f + c0_t - c0_0) log2(e) - dpi - shift.
        let mut coeffs = LaneCoeffs::default();
        for t in 0..S::TERMS {
            coeffs.c1[t] = ev.c[t][1] * LOG2E;
            coeffs.k[t] = [ev.c[t][0] * LOG2E; LANES];
            coeffs.c2[t] = [ev.c[t][2] * LOG2E; LANES];
        }
        let first = self.items.partition_point(|item| item.first < start);
        let last = self.items.partition_point(|item| item.first < end);
        let mut ln_sum = LnSum::default();
        // Single objects' bias corrections (and ln L_i of single-sample
        // objects) and m terms; a group's, one accumulator per lane.
        let (mut correction, mut m) = (0.0, [[0.0f64; 3]; MAX_TERMS]);
        let (mut correction_lanes, mut m_lanes) = ([0.0f64; LANES], [[[0.0f64; LANES]; 3]; MAX_TERMS]);
        for item in &self.items[first..last] {
            let i = item.first;
            if item.group {
                let range = item.at..item.at + LANES * item.n;
                let x = &arrays.values[range.clone()];
                let (mut x_shift, mut shift, mut f_scale) = ([0.0; LANES], [0.0; LANES], [1.0; LANES]);
                for l in 0..LANES {
                    x_shift[l] = self.x_base::<T>(i + l) - form.x0;
                    if S::EXP10 {
                        f_scale[l] = self.exp10_lo[i + l] * ev.scale;
                        for t in 0..S::TERMS {
                            coeffs.c2[t][l] = ev.c[t][2] * f_scale[l] * LOG2E;
                        }
                        shift[l] = self.bound_exp10(i + l, &ev, f_scale[l]) * LOG2E;
                    } else if S::LINEAR {
                        shift[l] = self.bound_quadratics(i + l, &ev) * LOG2E;
                    } else {
                        shift[l] = self.bound(i + l, form) * LOG2E;
                    }
                }
                let col = Deltas(if S::EXP10 {
                    &arrays.exp10[range.clone()]
                } else {
                    &[]
                });
                let column = if self.constant_prior[i] { 0..0 } else { range };
                let p = Deltas(&arrays.ln_prior[column]);
                // (Both arms spelled out, no closure: see below.)
                let pass = if self.constant_prior[i] {
                    group_pass::<E, T, _, S, GRAD, BIAS>(x, col, &x_shift, NoPrior, &coeffs, &mut shift)
                } else {
                    group_pass::<E, T, _, S, GRAD, BIAS>(x, col, &x_shift, p, &coeffs, &mut shift)
                };
                let Some(sums) = pass else {
                    // Every weight of an object is exactly zero: ln L = -inf.
                    out[0] = f64::NEG_INFINITY;
                    return out;
                };
                for l in 0..LANES {
                    let mut s0 = sums[0][l];
                    for t in 1..S::TERMS {
                        s0 += sums[6 * t][l];
                    }
                    ln_sum.add(c0 - self.ln_prior_min[i + l] + shift[l] * LN_2, s0);
                }
                for l in 0..LANES {
                    let a: Sums = std::array::from_fn(|k| sums[k][l]);
                    let (c, mi) = object_terms::<S, GRAD, BIAS>(&a, item.n, f_scale[l]);
                    correction_lanes[l] += c;
                    for t in 0..S::TERMS {
                        for k in 0..3 {
                            m_lanes[t][k][l] += mi[t][k];
                        }
                    }
                }
                continue;
            }
            if item.n == 1 {
                // One sample (e.g. a catalog of point estimates): its weight
                // is the whole sum, so ln L_i = ln p - ln pi with no exp,
                // and the bias correction and its gradient are exactly 0.
                // (lo is the sample itself, in either storage.)
                let d = self.lo[i] - form.x0;
                let f = if S::EXP10 {
                    self.exp10_lo[i] * ev.scale
                } else {
                    d * d
                };
                let mut v = [0.0; MAX_TERMS];
                for (vt, &[c0t, c1, c2]) in v.iter_mut().zip(&ev.c).take(S::TERMS) {
                    *vt = c0t + c1 * d + c2 * f;
                }
                if S::TERMS == 1 {
                    correction += c0 + v[0] - self.ln_prior_min[i];
                    if GRAD {
                        m[0][1] += d;
                        m[0][2] += f;
                    }
                } else {
                    let top = v[..S::TERMS].iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let total: f64 = v[..S::TERMS].iter().map(|vt| (vt - top).exp()).sum();
                    correction += c0 + top + total.ln() - self.ln_prior_min[i];
                    if GRAD {
                        for t in 0..S::TERMS {
                            let share = (v[t] - top).exp() / total;
                            m[t][0] += share;
                            m[t][1] += share * d;
                            m[t][2] += share * f;
                        }
                    }
                }
                continue;
            }
            let range = item.at..item.at + item.n;
            let x = &arrays.values[range.clone()];
            let x_shift = self.x_base::<T>(i) - form.x0;
            let mut c = coeffs.lane(0);
            let (f_scale, bound) = if S::EXP10 {
                let f_scale = self.exp10_lo[i] * ev.scale;
                for t in 0..S::TERMS {
                    c.c2[t] = ev.c[t][2] * f_scale * LOG2E;
                }
                (f_scale, self.bound_exp10(i, &ev, f_scale) * LOG2E)
            } else if S::LINEAR {
                (1.0, self.bound_quadratics(i, &ev) * LOG2E)
            } else {
                (1.0, self.bound(i, form) * LOG2E)
            };
            let col = Deltas(if S::EXP10 {
                &arrays.exp10[range.clone()]
            } else {
                &[]
            });
            let column = if self.constant_prior[i] { 0..0 } else { range };
            let p = Deltas(&arrays.ln_prior[column]);
            // (No closures: a closure would be compiled without the caller's
            // target features and take the inlined loop with it.)
            let pass = if self.constant_prior[i] {
                object_pass::<E, T, _, S, GRAD, BIAS>(x, col, x_shift, NoPrior, &c, bound)
            } else {
                object_pass::<E, T, _, S, GRAD, BIAS>(x, col, x_shift, p, &c, bound)
            };
            let Some((sums, shift)) = pass else {
                out[0] = f64::NEG_INFINITY;
                return out;
            };
            let mut s0 = sums[0];
            for t in 1..S::TERMS {
                s0 += sums[6 * t];
            }
            ln_sum.add(c0 - self.ln_prior_min[i] + shift * LN_2, s0);
            let (corr, mi) = object_terms::<S, GRAD, BIAS>(&sums, item.n, f_scale);
            correction += corr;
            for t in 0..S::TERMS {
                for k in 0..3 {
                    m[t][k] += mi[t][k];
                }
            }
        }
        out[0] = ln_sum.finish() + correction + sum_lanes(correction_lanes);
        if GRAD {
            for t in 0..S::TERMS {
                for k in 0..3 {
                    out[1 + 3 * t + k] = m[t][k] + sum_lanes(m_lanes[t][k]);
                }
            }
            if S::TERMS == 1 {
                out[1] = (end - start) as f64;
            }
        }
        out
    }

    /// What the stored values of object i are offsets from.
    #[inline(always)]
    fn x_base<T: Stored>(&self, i: usize) -> f64 {
        if T::FROM_LO { self.lo[i] } else { 0.0 }
    }

    /// The shift bound of object i for a centred quadratic: max of c2 d^2
    /// over its sample range, at the point of the range nearest the peak
    /// d = 0. NaN, which sends the object to the exact pass on every engine
    /// (its weights come out 0 or NaN: not `usable`), where the bound is so
    /// far below 0 that the exponents' rounding errors (~2^-52 of it) could
    /// reach 2^-12: a theta whose population is narrower than ~1e-6 of the
    /// object's distance from it (theta_sigma = 1e-15 in the tests). So the
    /// vector loops never see an exponent above ~2^-12, and their exp2
    /// needs no upper clamp.
    #[inline(always)]
    fn bound(&self, i: usize, form: &KernelForm) -> f64 {
        let d_near = 0.0f64.clamp(self.lo[i] - form.x0, self.hi[i] - form.x0);
        let bound = form.c[0][2] * d_near * d_near;
        // Branch-free: a branch here cost the AVX2 value-only copy ~40%
        // (measured; the loop's code generation changed).
        guard_bound(bound)
    }

    /// The same for f = 10^d: the largest term's maximum over [lo_i, hi_i]
    /// (each term is concave in x: its peak, or the end nearer it), less
    /// the first term's c0. `f_scale` = 10^(lo_i - x0).
    #[inline(always)]
    fn bound_exp10(&self, i: usize, ev: &Eval, f_scale: f64) -> f64 {
        let (lo, hi) = (self.lo[i], self.hi[i]);
        let mut bound = f64::NEG_INFINITY;
        for t in 0..ev.terms {
            let [c0, c1, c2] = ev.c[t];
            let top = if ev.x_peak[t] <= lo {
                c0 + c1 * (lo - ev.x0) + c2 * f_scale
            } else if ev.x_peak[t] >= hi {
                c0 + c1 * (hi - ev.x0) + c2 * f_scale * self.exp10_span[i]
            } else {
                ev.peak[t]
            };
            bound = bound.max(top);
        }
        guard_bound(bound)
    }
}

impl FusedStore {
    /// The same for quadratic terms with a c1 d part (a mixture's): the
    /// largest term's maximum over [lo_i, hi_i] (at its peak d = -c1 /
    /// (2 c2), or the end nearer it), less the first term's c0.
    #[inline(always)]
    fn bound_quadratics(&self, i: usize, ev: &Eval) -> f64 {
        let (lo, hi) = (self.lo[i] - ev.x0, self.hi[i] - ev.x0);
        let mut bound = f64::NEG_INFINITY;
        for &[c0, c1, c2] in &ev.c[..ev.terms] {
            let d = (-c1 / (2.0 * c2)).clamp(lo, hi);
            bound = bound.max(c0 + c1 * d + c2 * d * d);
        }
        guard_bound(bound)
    }
}

/// NaN for a bound below -2^40 (see [`FusedStore::bound`]), branch-free.
#[inline(always)]
fn guard_bound(bound: f64) -> f64 {
    let guard = u64::from(bound < -BOUND_MIN) * f64::NAN.to_bits();
    f64::from_bits(bound.to_bits() | guard)
}

/// The sample values as the kernel streams them (the store's copy).
#[derive(Debug, Clone, Copy)]
pub enum StoredSamples<'a> {
    F64(&'a [f64]),
    F32(&'a [f32]),
}

impl StoredSamples<'_> {
    pub fn bytes(&self) -> usize {
        match self {
            StoredSamples::F64(x) => x.len() * 8,
            StoredSamples::F32(x) => x.len() * 4,
        }
    }

    /// Reads every stored value once (a plain sum over `chunk`-sized
    /// pieces in parallel): the bench's memory-read reference.
    pub fn read_all(&self, chunk: usize) -> f64 {
        use rayon::prelude::*;
        match self {
            StoredSamples::F64(x) => x.par_chunks(chunk.max(1)).map(sum_stored).sum(),
            StoredSamples::F32(x) => x.par_chunks(chunk.max(1)).map(sum_stored).sum(),
        }
    }
}

/// The bench's memory-read reference: sum_j x_j.
fn sum_stored<T: Stored>(x: &[T]) -> f64 {
    lane_sum::<T, false>(x)
}

/// sum_j exp(buf_j) (buf_j <= 0) with the kernel's own exp, in the copy
/// the kernel runs: the bench's reference for the bare vectorised exp.
pub fn exp_reference_sum(buf: &[f64]) -> f64 {
    lane_sum::<f64, true>(buf)
}

/// sum_j x_j, or sum_j exp(x_j) with `EXP`, in the copy the kernel runs.
fn lane_sum<T: Stored, const EXP: bool>(x: &[T]) -> f64 {
    match isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: isa() checked that the CPU has these features.
        Isa::Avx512 => unsafe { simd::lane_sum_avx512::<T, EXP>(x) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { simd::lane_sum_avx2::<T, EXP>(x) },
        _ => {
            let mut acc = [0.0; LANES];
            for (j, v) in x.iter().enumerate() {
                acc[j % LANES] += if EXP {
                    exp_nonpositive_with::<Separate>(v.get())
                } else {
                    v.get()
                };
            }
            sum_lanes(acc)
        }
    }
}

/// One object's sums and the shift they are scaled by: with the bound
/// `q_max` if that leaves a usable sum, else by [`exact_sums`].
#[inline(always)]
fn object_pass<E: Engine, T: Stored, P: PriorDelta, S: Shape, const GRAD: bool, const BIAS: bool>(
    x: &[T],
    col: Deltas<'_, T>,
    x_shift: f64,
    prior: P,
    c: &Coeffs,
    q_max: f64,
) -> Option<(Sums, f64)> {
    let sums = E::object_sums::<T, P, S, GRAD, BIAS>(x, col, x_shift, prior, c, q_max);
    if usable(total_weight::<S>(&sums)) {
        return Some((sums, q_max));
    }
    exact_sums::<T, P, S, BIAS>(x, col, 1, 0, x_shift, prior, c)
}

/// S0 = sum_t S_t0.
#[inline(always)]
fn total_weight<S: Shape>(sums: &Sums) -> f64 {
    let mut s0 = sums[0];
    for t in 1..S::TERMS {
        s0 += sums[6 * t];
    }
    s0
}

/// Whether a sum of scaled weights keeps full precision: not so small
/// that the bound was loose by more than e^230, and finite (a NaN bound,
/// see `FusedStore::bound`, gives 0 or NaN). Every weight is at most ~1
/// per term (the bound guard), so no usable sum exceeds the sample count
/// times the terms, and the engines, equal for every exponent below 1020,
/// take the same decision. The upper end is 1e100, not f64::MAX: the
/// log-sum's product (at most 1e200) times the sum then provably stays
/// finite, and, measured, the AVX2 value-only copy ran 35% slower with
/// f64::MAX (6.5 -> 9.5 ms at 1e5 x 100: the compiler laid the loop out
/// differently).
#[inline(always)]
fn usable(s0: f64) -> bool {
    (TINY_SUM..=1e100).contains(&s0)
}

/// [`object_pass`] for the eight objects of a group: `shift` comes in as
/// the bounds and leaves as the shifts used. `None` when every weight of
/// one of the objects is exactly 0.
#[inline(always)]
fn group_pass<E: Engine, T: Stored, P: PriorDelta, S: Shape, const GRAD: bool, const BIAS: bool>(
    x: &[T],
    col: Deltas<'_, T>,
    x_shift: &[f64; LANES],
    prior: P,
    c: &LaneCoeffs,
    shift: &mut [f64; LANES],
) -> Option<LaneSums> {
    let mut sums = E::group_sums::<T, P, S, GRAD, BIAS>(x, col, x_shift, prior, c, shift);
    for l in 0..LANES {
        let mut s0 = sums[0][l];
        for t in 1..S::TERMS {
            s0 += sums[6 * t][l];
        }
        if !usable(s0) {
            let (exact, exact_shift) =
                exact_sums::<T, P, S, BIAS>(x, col, LANES, l, x_shift[l], prior, &c.lane(l))?;
            for k in 0..ACC {
                sums[k][l] = exact[k];
            }
            shift[l] = exact_shift;
        }
    }
    Some(sums)
}

/// The exact pass over the object stored at `x[lane + stride j]`, j = 0,
/// 1, ..: its exponents y_tj, then the sums of 2^(y_tj - max y), each y
/// computed the same way both times so that the largest term's weight is
/// exactly 1 at any scale of y. Returns the sums (in sample order, plain
/// multiply-adds: the same on every engine) and max y; `None` when every
/// weight is 0.
#[cold]
fn exact_sums<T: Stored, P: PriorDelta, S: Shape, const BIAS: bool>(
    x: &[T],
    col: Deltas<'_, T>,
    stride: usize,
    lane: usize,
    x_shift: f64,
    prior: P,
    c: &Coeffs,
) -> Option<(Sums, f64)> {
    // (d, f, y_t) of sample j.
    let exponents = |j: usize| {
        let d = x[j].get() + x_shift;
        let f = if S::EXP10 { col.at(j) } else { d * d };
        let dpi = prior.at(j);
        let y: [f64; MAX_TERMS] = std::array::from_fn(|t| {
            if t < S::TERMS {
                c.c1[t] * d + c.c2[t] * f + c.k[t] - dpi
            } else {
                f64::NEG_INFINITY
            }
        });
        (d, f, y)
    };
    let shift = (lane..x.len())
        .step_by(stride)
        .map(|j| exponents(j).2.into_iter().fold(f64::NEG_INFINITY, f64::max))
        .fold(f64::NEG_INFINITY, f64::max);
    if shift == f64::NEG_INFINITY || shift.is_nan() {
        return None;
    }
    let mut sums = [0.0; ACC];
    for j in (lane..x.len()).step_by(stride) {
        let (d, f, y) = exponents(j);
        let w: [f64; MAX_TERMS] = std::array::from_fn(|t| {
            if t < S::TERMS {
                exp2_with::<Separate>(y[t] - shift)
            } else {
                0.0
            }
        });
        let total: f64 = w.iter().sum();
        for t in 0..S::TERMS {
            let a = &mut sums[6 * t..6 * t + 6];
            a[0] += w[t];
            a[1] += w[t] * d;
            a[2] += w[t] * f;
            if BIAS {
                let u = total * w[t];
                a[3] += u;
                a[4] += u * d;
                a[5] += u * f;
            }
        }
    }
    Some((sums, shift))
}

/// ln pi at sample j less the object's smallest ln pi.
pub(crate) trait PriorDelta: Copy {
    /// Whether every delta is 0 (the vector engines then skip it).
    const ZERO: bool = false;
    /// Hints the CPU to fetch sample j's entry (no-op without a column).
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn prefetch(&self, j: usize) {
        let _ = j;
    }
    fn at(&self, j: usize) -> f64;
    /// Samples j.. for the lanes set in `mask`, 0 elsewhere (AVX-512).
    #[cfg(target_arch = "x86_64")]
    unsafe fn load8_tail(&self, j: usize, mask: u8) -> std::arch::x86_64::__m512d;
    /// Samples j..j+8 (j..j+4). SAFETY: they must exist, and the CPU must
    /// have AVX-512 (AVX2).
    #[cfg(target_arch = "x86_64")]
    unsafe fn load8(&self, j: usize) -> std::arch::x86_64::__m512d;
    #[cfg(target_arch = "x86_64")]
    unsafe fn load4(&self, j: usize) -> std::arch::x86_64::__m256d;
}

/// ln pi constant over the object.
#[derive(Clone, Copy)]
pub(crate) struct NoPrior;
/// The stored deltas.
#[derive(Clone, Copy)]
pub(crate) struct Deltas<'a, T>(&'a [T]);

impl PriorDelta for NoPrior {
    const ZERO: bool = true;
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8_tail(&self, _: usize, _: u8) -> std::arch::x86_64::__m512d {
        unsafe { std::arch::x86_64::_mm512_setzero_pd() }
    }
    #[inline(always)]
    fn at(&self, _: usize) -> f64 {
        0.0
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(&self, _: usize) -> std::arch::x86_64::__m512d {
        unsafe { std::arch::x86_64::_mm512_setzero_pd() }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load4(&self, _: usize) -> std::arch::x86_64::__m256d {
        unsafe { std::arch::x86_64::_mm256_setzero_pd() }
    }
}

/// Hints the CPU to fetch `column[j]` into L1; any j (a prefetch of an
/// address past the end never faults).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn prefetch<T>(column: &[T], j: usize) {
    // SAFETY: _mm_prefetch only hints; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            column.as_ptr().wrapping_add(j) as *const i8
        )
    }
}

impl<T: Stored> PriorDelta for Deltas<'_, T> {
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn prefetch(&self, j: usize) {
        prefetch(self.0, j)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8_tail(&self, j: usize, mask: u8) -> std::arch::x86_64::__m512d {
        unsafe { T::load8_tail(self.0.as_ptr().add(j), mask) }
    }
    #[inline(always)]
    fn at(&self, j: usize) -> f64 {
        self.0[j].get()
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(&self, j: usize) -> std::arch::x86_64::__m512d {
        unsafe { T::load8(self.0.as_ptr().add(j)) }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load4(&self, j: usize) -> std::arch::x86_64::__m256d {
        unsafe { T::load4(self.0.as_ptr().add(j)) }
    }
}

/// The vector loops of the kernel: scaled weights w_t = 2^(y_t - shift),
/// y_t = c1_t d + c2_t f + k_t - dpi, d = x + x_shift, f = d^2 or the
/// column's value (all in base 2: the natural coefficients times log2(e)), and their sums
/// in [`LANES`] independent accumulators, the same in every engine.
pub(crate) trait Engine {
    /// One object, sample j in lane j mod LANES. The tail is padded to a
    /// full lane group with weight exactly 0 (dpi = +inf) instead of a
    /// scalar loop.
    fn object_sums<T: Stored, P: PriorDelta, S: Shape, const GRAD: bool, const BIAS: bool>(
        x: &[T],
        col: Deltas<'_, T>,
        x_shift: f64,
        prior: P,
        c: &Coeffs,
        shift: f64,
    ) -> Sums;
    /// A group: lane l is object l, summed in sample order, with its own
    /// x_shift, coefficients and shift.
    fn group_sums<T: Stored, P: PriorDelta, S: Shape, const GRAD: bool, const BIAS: bool>(
        x: &[T],
        col: Deltas<'_, T>,
        x_shift: &[f64; LANES],
        prior: P,
        c: &LaneCoeffs,
        shift: &[f64; LANES],
    ) -> LaneSums;
}

/// Plain Rust, one lane at a time (the compiler may vectorise it).
pub(crate) struct Scalar<A>(std::marker::PhantomData<A>);

/// One sample into lane `l` of the accumulators, as every engine does it:
/// `c` with its k_t already less the shift (structure of arrays, so the
/// compiler can run the lanes as a vector).
#[inline(always)]
fn accumulate<A: MulAdd, S: Shape, const GRAD: bool, const BIAS: bool>(
    acc: &mut LaneSums,
    l: usize,
    (d, col, dpi): (f64, f64, f64),
    c: &LaneCoeffs,
) {
    let f = if S::EXP10 { col } else { d * d };
    let w0 = {
        let y = if S::LINEAR {
            A::mul_add(d, c.c1[0], c.k[0][l])
        } else {
            c.k[0][l]
        };
        exp2_with::<A>(A::mul_add(f, c.c2[0][l], y) - dpi)
    };
    let mut w1 = 0.0;
    let mut total = w0;
    if S::TERMS == 2 {
        let y = A::mul_add(d, c.c1[1], c.k[1][l]);
        w1 = exp2_with::<A>(A::mul_add(f, c.c2[1][l], y) - dpi);
        total += w1;
    }
    add_term::<A, GRAD, BIAS>(acc, 0, l, (w0, total), d, f);
    if S::TERMS == 2 {
        add_term::<A, GRAD, BIAS>(acc, 6, l, (w1, total), d, f);
    }
}

/// One term's weight `w` (of the sample's `total`) into the accumulators
/// from `a` on.
#[inline(always)]
fn add_term<A: MulAdd, const GRAD: bool, const BIAS: bool>(
    acc: &mut LaneSums,
    a: usize,
    l: usize,
    (w, total): (f64, f64),
    d: f64,
    f: f64,
) {
    acc[a][l] += w;
    if GRAD {
        acc[a + 1][l] = A::mul_add(w, d, acc[a + 1][l]);
        acc[a + 2][l] = A::mul_add(w, f, acc[a + 2][l]);
    }
    if BIAS {
        let u = total * w;
        acc[a + 3][l] += u;
        if GRAD {
            acc[a + 4][l] = A::mul_add(u, d, acc[a + 4][l]);
            acc[a + 5][l] = A::mul_add(u, f, acc[a + 5][l]);
        }
    }
}

impl LaneCoeffs {
    /// One object's coefficients in every lane, each k_t less `shift`.
    fn splat(c: &Coeffs, shift: f64) -> Self {
        let mut out = LaneCoeffs {
            c1: c.c1,
            ..Default::default()
        };
        for t in 0..MAX_TERMS {
            out.c2[t] = [c.c2[t]; LANES];
            out.k[t] = [c.k[t] - shift; LANES];
        }
        out
    }

    /// Each lane's k_t less its shift.
    fn shifted(&self, shift: &[f64; LANES]) -> Self {
        let mut out = *self;
        for k in &mut out.k {
            for l in 0..LANES {
                k[l] -= shift[l];
            }
        }
        out
    }
}

impl<A: MulAdd> Engine for Scalar<A> {
    #[inline(always)]
    fn object_sums<T: Stored, P: PriorDelta, S: Shape, const GRAD: bool, const BIAS: bool>(
        x: &[T],
        col: Deltas<'_, T>,
        x_shift: f64,
        prior: P,
        c: &Coeffs,
        shift: f64,
    ) -> Sums {
        let c = LaneCoeffs::splat(c, shift);
        let mut acc = [[0.0f64; LANES]; ACC];
        let n = x.len();
        let mut j0 = 0;
        while j0 < n {
            for l in 0..LANES {
                let j = j0 + l;
                let sample = if j < n {
                    let f = if S::EXP10 { col.at(j) } else { 0.0 };
                    (x[j].get() + x_shift, f, prior.at(j))
                } else {
                    (0.0, 0.0, f64::INFINITY)
                };
                accumulate::<A, S, GRAD, BIAS>(&mut acc, l, sample, &c);
            }
            j0 += LANES;
        }
        acc.map(sum_lanes)
    }

    #[inline(always)]
    fn group_sums<T: Stored, P: PriorDelta, S: Shape, const GRAD: bool, const BIAS: bool>(
        x: &[T],
        col: Deltas<'_, T>,
        x_shift: &[f64; LANES],
        prior: P,
        c: &LaneCoeffs,
        shift: &[f64; LANES],
    ) -> LaneSums {
        let c = c.shifted(shift);
        let mut acc = [[0.0f64; LANES]; ACC];
        for j in (0..x.len()).step_by(LANES) {
            for l in 0..LANES {
                let f = if S::EXP10 { col.at(j + l) } else { 0.0 };
                let sample = (x[j + l].get() + x_shift[l], f, prior.at(j + l));
                accumulate::<A, S, GRAD, BIAS>(&mut acc, l, sample, &c);
            }
        }
        acc
    }
}

/// The vector loops in explicit AVX-512 and AVX2 vectors. The compiler's
/// own vectorisation of [`Scalar`] proved fragile (one monomorphised copy
/// came out fully scalar), and the hardware FMA must be asked for by name.
/// One generic loop over [`Lanes`], a group of eight float64 lanes: one
/// AVX-512 register, or two AVX2 registers (lanes 0-3 and 4-7). Every
/// operation mirrors [`Scalar`]`<Fused>` lane for lane.
#[cfg(target_arch = "x86_64")]
pub(crate) mod simd {
    use std::arch::x86_64::*;

    use super::{ACC, Coeffs, Deltas, Engine, LANES, LaneCoeffs, LaneSums, PriorDelta, Shape, Stored, Sums};
    use crate::math::fastmath::{EXP_MIN, EXP_POLY, EXP2_MIN, EXP2_POLY, LN2_HI, LN2_LO, LOG2E, ROUND_MAGIC};
    use crate::model::population::MAX_TERMS;

    /// Samples ahead to prefetch (8 KB of float64; 512 to 4096 measured
    /// alike here).
    const PREFETCH_AHEAD: usize = 1024;

    /// Eight float64 lanes and the operations the kernel needs. SAFETY (all
    /// methods): the CPU must have the instruction set of the implementing
    /// type, and loads must be in bounds.
    pub(crate) trait Lanes: Copy {
        /// Which lanes of a tail hold samples.
        type Mask: Copy;
        unsafe fn splat(v: f64) -> Self;
        unsafe fn add(a: Self, b: Self) -> Self;
        unsafe fn sub(a: Self, b: Self) -> Self;
        unsafe fn mul(a: Self, b: Self) -> Self;
        /// a * b + c, rounded once.
        unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self;
        unsafe fn exp(x: Self) -> Self;
        /// [`exp2_with`](crate::math::fastmath::exp2_with) (see V8's for its range).
        unsafe fn exp2(y: Self) -> Self;
        /// Sum of the lanes in [`sum_lanes`](crate::math::fastmath::sum_lanes)'s order.
        unsafe fn hsum(a: Self) -> f64;
        unsafe fn load<T: Stored>(p: *const T) -> Self;
        /// The eight lanes to `p`.
        unsafe fn store(a: Self, p: *mut f64);
        unsafe fn load_prior<P: PriorDelta>(prior: &P, j: usize) -> Self;
        /// Samples `from..` of `x` (fewer than eight) and their ln pi
        /// deltas; 0 in the lanes past the end, which the mask marks.
        unsafe fn load_tail<T: Stored, P: PriorDelta>(
            x: &[T],
            prior: &P,
            from: usize,
        ) -> (Self, Self, Self::Mask);
        /// `w` with the lanes outside the mask set to 0.
        unsafe fn zero_outside(w: Self, mask: Self::Mask) -> Self;
        /// A column's entries `from..len` (the lanes `mask` marks), 0 in
        /// the others.
        unsafe fn load_column_tail<P: PriorDelta>(col: &P, from: usize, len: usize, mask: Self::Mask)
        -> Self;
    }

    /// The polynomial `coeffs` (highest degree first) at r, by Horner.
    #[inline(always)]
    unsafe fn horner8(coeffs: &[f64; 12], r: __m512d) -> __m512d {
        unsafe {
            let mut p = _mm512_set1_pd(coeffs[0]);
            for &c in &coeffs[1..] {
                p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(c));
            }
            p
        }
    }

    /// One AVX-512 register.
    #[derive(Clone, Copy)]
    pub(crate) struct V8(__m512d);

    /// Two AVX2 registers: lanes 0-3, 4-7.
    #[derive(Clone, Copy)]
    pub(crate) struct V4x2(__m256d, __m256d);

    impl Lanes for V8 {
        type Mask = u8;
        #[inline(always)]
        unsafe fn splat(v: f64) -> Self {
            unsafe { V8(_mm512_set1_pd(v)) }
        }
        #[inline(always)]
        unsafe fn add(a: Self, b: Self) -> Self {
            unsafe { V8(_mm512_add_pd(a.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn sub(a: Self, b: Self) -> Self {
            unsafe { V8(_mm512_sub_pd(a.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn mul(a: Self, b: Self) -> Self {
            unsafe { V8(_mm512_mul_pd(a.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self {
            unsafe { V8(_mm512_fmadd_pd(a.0, b.0, c.0)) }
        }
        /// exp_nonpositive, except that arguments in [-745, -708) give the
        /// subnormal e^x instead of 0 (weights 1e-308 of the largest: no
        /// sum can tell).
        #[inline(always)]
        unsafe fn exp(x: Self) -> Self {
            unsafe {
                // scalef underflows to 0 by itself, so no select is needed:
                // only a floor low enough that -inf (and anything below
                // e^-745, the smallest subnormal) gives exactly 0, and high
                // enough that n * LN2_HI stays exact (|n| < 2^11).
                let xc = _mm512_max_pd(x.0, _mm512_set1_pd(-1100.0));
                let t = _mm512_fmadd_pd(xc, _mm512_set1_pd(LOG2E), _mm512_set1_pd(ROUND_MAGIC));
                let n = _mm512_sub_pd(t, _mm512_set1_pd(ROUND_MAGIC));
                let r = _mm512_fnmadd_pd(n, _mm512_set1_pd(LN2_HI), xc);
                let r = _mm512_fnmadd_pd(n, _mm512_set1_pd(LN2_LO), r);
                // p * 2^n in one instruction, rounded once (exact while the
                // result is normal).
                V8(_mm512_scalef_pd(horner8(&EXP_POLY, r), n))
            }
        }
        /// For -2^50 <= y the rounding below is exact; below -1020 (and
        /// for NaN) the lane is masked to 0, as in the scalar definition,
        /// so scalef never makes a subnormal or underflows: with FTZ off
        /// each such result takes a microcode assist, measured 3x the
        /// Schechter kernel's time (1.5 against 0.5 ns per sample) where
        /// many samples lie far above the knee. The mask costs one compare
        /// per exp2. Below -2^50 the rounding gives 0, +-inf or NaN: a sum
        /// that is not finite sends the object to the exact pass (see
        /// `usable`).
        #[inline(always)]
        unsafe fn exp2(y: Self) -> Self {
            unsafe {
                let t = _mm512_add_pd(y.0, _mm512_set1_pd(ROUND_MAGIC));
                let n = _mm512_sub_pd(t, _mm512_set1_pd(ROUND_MAGIC));
                let r = _mm512_sub_pd(y.0, n);
                let keep = _mm512_cmp_pd_mask::<_CMP_GE_OQ>(y.0, _mm512_set1_pd(EXP2_MIN));
                V8(_mm512_maskz_scalef_pd(keep, horner8(&EXP2_POLY, r), n))
            }
        }
        #[inline(always)]
        unsafe fn hsum(a: Self) -> f64 {
            unsafe {
                V4x2::hsum(V4x2(
                    _mm512_castpd512_pd256(a.0),
                    _mm512_extractf64x4_pd::<1>(a.0),
                ))
            }
        }
        #[inline(always)]
        unsafe fn load<T: Stored>(p: *const T) -> Self {
            unsafe { V8(T::load8(p)) }
        }
        #[inline(always)]
        unsafe fn store(a: Self, p: *mut f64) {
            unsafe { _mm512_storeu_pd(p, a.0) }
        }
        #[inline(always)]
        unsafe fn load_prior<P: PriorDelta>(prior: &P, j: usize) -> Self {
            unsafe { V8(prior.load8(j)) }
        }
        #[inline(always)]
        unsafe fn load_tail<T: Stored, P: PriorDelta>(x: &[T], prior: &P, from: usize) -> (Self, Self, u8) {
            // Masked loads read only the samples that exist.
            let mask = (1u8 << (x.len() - from)) - 1;
            unsafe {
                (
                    V8(T::load8_tail(x.as_ptr().add(from), mask)),
                    V8(prior.load8_tail(from, mask)),
                    mask,
                )
            }
        }
        #[inline(always)]
        unsafe fn zero_outside(w: Self, mask: u8) -> Self {
            unsafe { V8(_mm512_maskz_mov_pd(mask, w.0)) }
        }
        #[inline(always)]
        unsafe fn load_column_tail<P: PriorDelta>(col: &P, from: usize, _len: usize, mask: u8) -> Self {
            unsafe { V8(col.load8_tail(from, mask)) }
        }
    }

    /// exp_nonpositive on four lanes.
    #[inline(always)]
    unsafe fn exp4(x: __m256d) -> __m256d {
        unsafe {
            let xc = _mm256_max_pd(x, _mm256_set1_pd(EXP_MIN));
            let t = _mm256_fmadd_pd(xc, _mm256_set1_pd(LOG2E), _mm256_set1_pd(ROUND_MAGIC));
            let n = _mm256_sub_pd(t, _mm256_set1_pd(ROUND_MAGIC));
            let r = _mm256_fnmadd_pd(n, _mm256_set1_pd(LN2_HI), xc);
            let r = _mm256_fnmadd_pd(n, _mm256_set1_pd(LN2_LO), r);
            let y = poly_times_pow2_4(&EXP_POLY, r, t);
            let below = _mm256_cmp_pd::<_CMP_LT_OQ>(x, _mm256_set1_pd(EXP_MIN));
            _mm256_blendv_pd(y, _mm256_setzero_pd(), below)
        }
    }

    /// The polynomial `coeffs` (Horner, highest degree first) at r, times
    /// 2^n for the integer n in t's low bits (t = n + ROUND_MAGIC, n >= -1022).
    #[inline(always)]
    unsafe fn poly_times_pow2_4(coeffs: &[f64; 12], r: __m256d, t: __m256d) -> __m256d {
        unsafe {
            let mut p = _mm256_set1_pd(coeffs[0]);
            for &c in &coeffs[1..] {
                p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(c));
            }
            let bits =
                _mm256_slli_epi64::<52>(_mm256_add_epi64(_mm256_castpd_si256(t), _mm256_set1_epi64x(1023)));
            _mm256_mul_pd(p, _mm256_castsi256_pd(bits))
        }
    }

    /// exp2_with on four lanes: clamped below, and 0 below EXP2_MIN (or
    /// NaN). Like the scalar definition it has no upper clamp: above 1023
    /// the exponent field would wrap round (finite garbage, even negative,
    /// that `usable` could not see: NaN at theta_sigma = 1e-15), and the
    /// kernel's bound guard keeps every y below ~2^-12 instead (a clamp
    /// here cost one vector op, ~6% on AVX2).
    #[inline(always)]
    unsafe fn exp2_4(y: __m256d) -> __m256d {
        unsafe {
            let yc = _mm256_max_pd(y, _mm256_set1_pd(EXP2_MIN));
            let t = _mm256_add_pd(yc, _mm256_set1_pd(ROUND_MAGIC));
            let n = _mm256_sub_pd(t, _mm256_set1_pd(ROUND_MAGIC));
            let r = _mm256_sub_pd(yc, n);
            let w = poly_times_pow2_4(&EXP2_POLY, r, t);
            let below = _mm256_cmp_pd::<_CMP_NGE_UQ>(y, _mm256_set1_pd(EXP2_MIN));
            _mm256_blendv_pd(w, _mm256_setzero_pd(), below)
        }
    }

    /// Applies a two-argument AVX2 operation to both halves.
    macro_rules! both {
        ($op:ident, $a:expr, $b:expr) => {
            V4x2($op($a.0, $b.0), $op($a.1, $b.1))
        };
    }

    impl Lanes for V4x2 {
        /// All-ones bits in the lanes that hold samples.
        type Mask = V4x2;
        #[inline(always)]
        unsafe fn splat(v: f64) -> Self {
            unsafe { V4x2(_mm256_set1_pd(v), _mm256_set1_pd(v)) }
        }
        #[inline(always)]
        unsafe fn add(a: Self, b: Self) -> Self {
            unsafe { both!(_mm256_add_pd, a, b) }
        }
        #[inline(always)]
        unsafe fn sub(a: Self, b: Self) -> Self {
            unsafe { both!(_mm256_sub_pd, a, b) }
        }
        #[inline(always)]
        unsafe fn mul(a: Self, b: Self) -> Self {
            unsafe { both!(_mm256_mul_pd, a, b) }
        }
        #[inline(always)]
        unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self {
            unsafe { V4x2(_mm256_fmadd_pd(a.0, b.0, c.0), _mm256_fmadd_pd(a.1, b.1, c.1)) }
        }
        #[inline(always)]
        unsafe fn exp(x: Self) -> Self {
            unsafe { V4x2(exp4(x.0), exp4(x.1)) }
        }
        #[inline(always)]
        unsafe fn exp2(y: Self) -> Self {
            unsafe { V4x2(exp2_4(y.0), exp2_4(y.1)) }
        }
        #[inline(always)]
        unsafe fn hsum(a: Self) -> f64 {
            unsafe {
                let s = _mm256_add_pd(a.0, a.1);
                let t = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd::<1>(s));
                _mm_cvtsd_f64(t) + _mm_cvtsd_f64(_mm_unpackhi_pd(t, t))
            }
        }
        #[inline(always)]
        unsafe fn load<T: Stored>(p: *const T) -> Self {
            unsafe { V4x2(T::load4(p), T::load4(p.add(4))) }
        }
        #[inline(always)]
        unsafe fn store(a: Self, p: *mut f64) {
            unsafe {
                _mm256_storeu_pd(p, a.0);
                _mm256_storeu_pd(p.add(4), a.1);
            }
        }
        #[inline(always)]
        unsafe fn load_prior<P: PriorDelta>(prior: &P, j: usize) -> Self {
            unsafe { V4x2(prior.load4(j), prior.load4(j + 4)) }
        }
        #[inline(always)]
        unsafe fn load_tail<T: Stored, P: PriorDelta>(x: &[T], prior: &P, from: usize) -> (Self, Self, V4x2) {
            let (mut v, mut dpi, mut keep) = ([0.0; LANES], [0.0; LANES], [0.0; LANES]);
            for (l, j) in (from..x.len()).enumerate() {
                v[l] = x[j].get();
                dpi[l] = prior.at(j);
                keep[l] = f64::from_bits(u64::MAX);
            }
            // No closure here: it would be compiled without AVX2.
            unsafe {
                (
                    Self::load(v.as_ptr()),
                    Self::load(dpi.as_ptr()),
                    Self::load(keep.as_ptr()),
                )
            }
        }
        #[inline(always)]
        unsafe fn zero_outside(w: Self, mask: V4x2) -> Self {
            unsafe { both!(_mm256_and_pd, w, mask) }
        }
        #[inline(always)]
        unsafe fn load_column_tail<P: PriorDelta>(col: &P, from: usize, len: usize, _mask: V4x2) -> Self {
            let mut v = [0.0; LANES];
            for (l, j) in (from..len).enumerate() {
                v[l] = col.at(j);
            }
            unsafe { Self::load(v.as_ptr()) }
        }
    }

    /// The coefficients as vectors, k_t less the shift.
    #[derive(Clone, Copy)]
    struct VCoeffs<V> {
        c1: [V; MAX_TERMS],
        c2: [V; MAX_TERMS],
        k: [V; MAX_TERMS],
    }

    /// One lane group into the accumulators (per term w_t, w_t d, w_t f
    /// and the same with u_t = w w_t, as `GRAD` and `BIAS` need them);
    /// with `TAIL`, the lanes outside `mask` get weight 0.
    #[inline(always)]
    unsafe fn step<
        V: Lanes,
        P: PriorDelta,
        S: Shape,
        const GRAD: bool,
        const BIAS: bool,
        const TAIL: bool,
    >(
        a: &mut [V; ACC],
        (d, col, dpi): (V, V, V),
        c: &VCoeffs<V>,
        mask: Option<V::Mask>,
    ) {
        unsafe {
            let f = if S::EXP10 { col } else { V::mul(d, d) };
            let mut w = [f; MAX_TERMS];
            for (t, wt) in w.iter_mut().enumerate().take(S::TERMS) {
                let y = if S::LINEAR {
                    V::fmadd(d, c.c1[t], c.k[t])
                } else {
                    c.k[t]
                };
                let mut y = V::fmadd(f, c.c2[t], y);
                if !P::ZERO || TAIL {
                    y = V::sub(y, dpi);
                }
                // (Lanes past a tail may be out of exp2's range: masked to 0.)
                *wt = V::exp2(y);
                if let (true, Some(m)) = (TAIL, mask) {
                    *wt = V::zero_outside(*wt, m);
                }
            }
            let mut total = w[0];
            for wt in &w[1..S::TERMS] {
                total = V::add(total, *wt);
            }
            for (t, &wt) in w.iter().enumerate().take(S::TERMS) {
                let b = 6 * t;
                a[b] = V::add(a[b], wt);
                if GRAD {
                    a[b + 1] = V::fmadd(wt, d, a[b + 1]);
                    a[b + 2] = V::fmadd(wt, f, a[b + 2]);
                }
                if BIAS {
                    let u = V::mul(total, wt);
                    a[b + 3] = V::add(a[b + 3], u);
                    if GRAD {
                        a[b + 4] = V::fmadd(u, d, a[b + 4]);
                        a[b + 5] = V::fmadd(u, f, a[b + 5]);
                    }
                }
            }
        }
    }

    /// Whether a kernel copy uses accumulator k (per term: 1, 2 gradient;
    /// 3 bias correction; 4, 5 both).
    #[inline(always)]
    const fn used<S: Shape, const GRAD: bool, const BIAS: bool>(k: usize) -> bool {
        k / 6 < S::TERMS
            && match k % 6 {
                0 => true,
                1 | 2 => GRAD,
                3 => BIAS,
                _ => GRAD && BIAS,
            }
    }

    /// The per-object loop of [`Engine::object_sums`] on lanes `V`.
    #[inline(always)]
    unsafe fn object_sums<
        V: Lanes,
        T: Stored,
        P: PriorDelta,
        S: Shape,
        const GRAD: bool,
        const BIAS: bool,
    >(
        x: &[T],
        col: Deltas<'_, T>,
        x_shift: f64,
        prior: P,
        c: &Coeffs,
        shift: f64,
    ) -> Sums {
        const { assert!(LANES == 8) };
        unsafe {
            let c = VCoeffs {
                c1: c.c1.map(|v| V::splat(v)),
                c2: c.c2.map(|v| V::splat(v)),
                k: c.k.map(|v| V::splat(v - shift)),
            };
            let xs = V::splat(x_shift);
            let zero = V::splat(0.0);
            let mut a = [zero; ACC];
            let full = x.len() / LANES * LANES;
            let mut j = 0;
            while j < full {
                // The hardware prefetcher alone left the loop waiting on
                // memory (1.8 -> 1.0 ns per sample on one core, 1e7
                // samples); the address may run past the end, which a
                // prefetch tolerates.
                super::prefetch(x, j + PREFETCH_AHEAD);
                prior.prefetch(j + PREFETCH_AHEAD);
                let t = if S::EXP10 {
                    col.prefetch(j + PREFETCH_AHEAD);
                    V::load_prior(&col, j)
                } else {
                    zero
                };
                let d = V::add(V::load(x.as_ptr().add(j)), xs);
                step::<V, P, S, GRAD, BIAS, false>(&mut a, (d, t, V::load_prior(&prior, j)), &c, None);
                j += LANES;
            }
            if full < x.len() {
                let (v, dpi, mask) = V::load_tail(x, &prior, full);
                let t = if S::EXP10 {
                    V::load_column_tail(&col, full, x.len(), mask)
                } else {
                    zero
                };
                step::<V, P, S, GRAD, BIAS, true>(&mut a, (V::add(v, xs), t, dpi), &c, Some(mask));
            }
            let mut h = [0.0; ACC];
            for k in 0..ACC {
                if used::<S, GRAD, BIAS>(k) {
                    h[k] = V::hsum(a[k]);
                }
            }
            h
        }
    }

    /// The group loop of [`Engine::group_sums`] on lanes `V`: one vector
    /// per sample index, lane l = object l.
    #[inline(always)]
    unsafe fn group_sums<V: Lanes, T: Stored, P: PriorDelta, S: Shape, const GRAD: bool, const BIAS: bool>(
        x: &[T],
        col: Deltas<'_, T>,
        x_shift: &[f64; LANES],
        prior: P,
        c: &LaneCoeffs,
        shift: &[f64; LANES],
    ) -> LaneSums {
        const { assert!(LANES == 8) };
        debug_assert!(x.len().is_multiple_of(LANES));
        let c = c.shifted(shift);
        unsafe {
            let c = VCoeffs {
                c1: c.c1.map(|v| V::splat(v)),
                c2: c.c2.map(|v| V::load(v.as_ptr())),
                k: c.k.map(|v| V::load(v.as_ptr())),
            };
            let xs = V::load(x_shift.as_ptr());
            let zero = V::splat(0.0);
            let mut a = [zero; ACC];
            let mut j = 0;
            while j < x.len() {
                super::prefetch(x, j + PREFETCH_AHEAD);
                prior.prefetch(j + PREFETCH_AHEAD);
                let t = if S::EXP10 {
                    col.prefetch(j + PREFETCH_AHEAD);
                    V::load_prior(&col, j)
                } else {
                    zero
                };
                let d = V::add(V::load(x.as_ptr().add(j)), xs);
                step::<V, P, S, GRAD, BIAS, false>(&mut a, (d, t, V::load_prior(&prior, j)), &c, None);
                j += LANES;
            }
            let mut out = [[0.0; LANES]; ACC];
            for k in 0..ACC {
                if used::<S, GRAD, BIAS>(k) {
                    V::store(a[k], out[k].as_mut_ptr());
                }
            }
            out
        }
    }

    /// Each copy of the kernel's loops: [`Avx512`] or [`Avx2`].
    pub(crate) struct Vectors<V>(std::marker::PhantomData<V>);
    pub(crate) type Avx512 = Vectors<V8>;
    pub(crate) type Avx2 = Vectors<V4x2>;

    impl<V: Lanes> Engine for Vectors<V> {
        #[inline(always)]
        fn object_sums<T: Stored, P: PriorDelta, S: Shape, const GRAD: bool, const BIAS: bool>(
            x: &[T],
            col: Deltas<'_, T>,
            x_shift: f64,
            prior: P,
            c: &Coeffs,
            shift: f64,
        ) -> Sums {
            // SAFETY: Vectors<V> is only used from the copy of the kernel
            // compiled for V's instruction set (FusedStore::block_avx512,
            // block_avx2); object_sums loads in bounds (the column, when
            // read, is as long as x).
            unsafe { object_sums::<V, T, P, S, GRAD, BIAS>(x, col, x_shift, prior, c, shift) }
        }
        #[inline(always)]
        fn group_sums<T: Stored, P: PriorDelta, S: Shape, const GRAD: bool, const BIAS: bool>(
            x: &[T],
            col: Deltas<'_, T>,
            x_shift: &[f64; LANES],
            prior: P,
            c: &LaneCoeffs,
            shift: &[f64; LANES],
        ) -> LaneSums {
            // SAFETY: as above; group_sums loads whole lane groups of a
            // slice whose length is a multiple of LANES.
            unsafe { group_sums::<V, T, P, S, GRAD, BIAS>(x, col, x_shift, prior, c, shift) }
        }
    }

    /// sum_j x_j, or sum_j exp(x_j) with `EXP`, on lanes `V`; the tail
    /// one value at a time.
    #[inline(always)]
    unsafe fn lane_sum<V: Lanes, T: Stored, const EXP: bool>(x: &[T]) -> f64 {
        let full = x.len() / LANES * LANES;
        unsafe {
            let mut a = V::splat(0.0);
            let mut j = 0;
            while j < full {
                let v = V::load(x.as_ptr().add(j));
                a = V::add(a, if EXP { V::exp(v) } else { v });
                j += LANES;
            }
            let mut total = V::hsum(a);
            for v in &x[full..] {
                total += if EXP {
                    crate::math::fastmath::exp_nonpositive(v.get())
                } else {
                    v.get()
                };
            }
            total
        }
    }

    #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
    pub(crate) fn lane_sum_avx512<T: Stored, const EXP: bool>(x: &[T]) -> f64 {
        // SAFETY: the CPU has the features this function is compiled for.
        unsafe { lane_sum::<V8, T, EXP>(x) }
    }

    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn lane_sum_avx2<T: Stored, const EXP: bool>(x: &[T]) -> f64 {
        // SAFETY: as above.
        unsafe { lane_sum::<V4x2, T, EXP>(x) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::likelihood::importance::{HyperLikelihood, ImportanceLikelihood};
    use crate::model::gaussian::Gaussian;
    use crate::model::library::Population;
    use crate::model::population::PopulationModel;
    use rand::{RngExt, SeedableRng};

    /// Ragged objects (1 to 1300 samples, so tails of every length and
    /// objects longer than the prefetch distance), some with a per-sample
    /// interim prior and some with one constant value; then runs of equal
    /// counts that form groups of eight (one with the prior column, one
    /// without, 1200 samples: past the prefetch distance), a run of nine
    /// (a group and one left over) and a run of eight broken by a
    /// different prior kind (no group).
    fn catalog(per_sample_prior: bool) -> SampleCatalog {
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(11);
        let mut counts = vec![1usize, 2, 3, 5, 7, 8, 9, 15, 16, 17, 100, 700, 1300, 64, 97];
        let mut column = vec![];
        for i in 0..counts.len() {
            column.push(i % 3 != 0);
        }
        for (c, n, col) in [(13, 8, true), (100, 8, false), (1200, 8, true), (3, 9, false)] {
            counts.extend(std::iter::repeat_n(c, n));
            column.extend(std::iter::repeat_n(col, n));
        }
        counts.extend([40; 8]);
        column.extend([true, true, true, false, true, true, true, true]);
        let mut samples = Vec::new();
        let mut ln_prior = Vec::new();
        for (i, &c) in counts.iter().enumerate() {
            let centre = 3.0 + 0.1 * (i % 30) as f64;
            let s: Vec<f64> = (0..c)
                .map(|_| centre + 1.5 * (rng.random::<f64>() - 0.5))
                .collect();
            ln_prior.push(if per_sample_prior && column[i] {
                // ln pi proportional to 10^x (the SMF's interim prior).
                s.iter().map(|x| std::f64::consts::LN_10 * x - 4.0).collect()
            } else {
                vec![-1.7 + 0.1 * i as f64; c]
            });
            samples.push(s);
        }
        SampleCatalog::from_objects(&samples, Some(&ln_prior)).unwrap()
    }

    fn rel(a: f64, b: f64) -> f64 {
        (a - b).abs() / b.abs().max(1e-300)
    }

    /// The likelihood with the fused kernel on the copy for `isa`, and the
    /// general one on the portable copy (the straightforward reference).
    fn fused_and_plain<M: PopulationModel + Clone>(
        cat: &SampleCatalog,
        model: M,
        bias: bool,
        isa: Isa,
    ) -> (ImportanceLikelihood<'_, M>, ImportanceLikelihood<'_, M>) {
        let fused = ImportanceLikelihood::new(cat, model.clone())
            .unwrap()
            .with_bias_correction(bias)
            .with_isa(isa)
            .unwrap();
        assert!(fused.storage().is_some(), "the fused kernel applies");
        assert_eq!(fused.isa(), isa);
        let plain = ImportanceLikelihood::new(cat, model)
            .unwrap()
            .with_bias_correction(bias)
            .without_fused_kernel()
            .with_isa(Isa::Portable)
            .unwrap();
        (fused, plain)
    }

    /// The fused kernel against the general one at theta: value (with and
    /// without the gradient) within 1e-12 relative, each gradient component
    /// within 1e-12 of the largest (the contract; measured differences are
    /// ~1e-15).
    fn assert_matches_plain<M: PopulationModel>(
        fused: &ImportanceLikelihood<M>,
        plain: &ImportanceLikelihood<M>,
        theta: &[f64],
        case: &str,
    ) {
        let p = theta.len();
        let (mut g1, mut g2) = (vec![0.0; p], vec![0.0; p]);
        let v1 = fused.ln_likelihood_grad(theta, &mut g1);
        let v2 = plain.ln_likelihood_grad(theta, &mut g2);
        let v3 = fused.ln_likelihood(theta);
        let isa = fused.isa().name();
        assert!(
            rel(v1, v2) < 1e-12 || v1 == v2,
            "{isa}: {case}, theta {theta:?}: value {v1} vs {v2}"
        );
        assert!(
            rel(v3, v2) < 1e-12 || v3 == v2,
            "{isa}: {case}, theta {theta:?}: value-only {v3} vs {v2}"
        );
        if !v2.is_finite() {
            return;
        }
        let scale = g2.iter().fold(0.0f64, |a, g| a.max(g.abs()));
        for k in 0..p {
            assert!(
                (g1[k] - g2[k]).abs() <= 1e-12 * scale,
                "{isa}: {case}, theta {theta:?}: grad {k}: {} vs {}",
                g1[k],
                g2[k]
            );
        }
    }

    /// Fixed thetas; the last: exponents beyond every exp2's range, whose
    /// rounding errors are ~1e31 (the exact pass).
    const THETAS: [[f64; 2]; 5] = [[3.0, 1.0], [4.5, 0.3], [2.0, 3.0], [9.0, 0.2], [3.5, 1e-15]];

    /// The sweep's thetas: theta_sigma from e^-7 to e^3 (small sigma makes
    /// the bounds loose: sums scaled far below 1, the exact pass, tiny
    /// factors for the log-sum, large 1/S0^2 in the bias correction), and
    /// the fixed ones.
    fn sweep() -> Vec<[f64; 2]> {
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(5);
        let mut thetas: Vec<[f64; 2]> = (0..150)
            .map(|_| [rng.random_range(-6.0..6.0), rng.random_range(-7.0f64..3.0).exp()])
            .collect();
        thetas.extend(THETAS);
        thetas
    }

    fn sweep_catalog(seed: u64) -> SampleCatalog {
        crate::data::simulate::simulate_gaussian_toy(&crate::data::simulate::ToySettings {
            n_obj: 30 + 7 * seed as usize,
            n_samp: 100,
            seed,
            ..Default::default()
        })
        .unwrap()
        .catalog
    }

    /// The fused kernel against the general chunked one (the
    /// straightforward implementation: per-sample gradients, the exact
    /// maximum, plain multiply-adds), value and gradient, 1e-12 relative.
    fn fused_kernel_matches_the_straightforward_one(isa: Isa) {
        for per_sample in [false, true] {
            let cat = catalog(per_sample);
            for bias in [false, true] {
                let (fused, plain) = fused_and_plain(&cat, Gaussian, bias, isa);
                assert_eq!(fused.storage(), Some(SampleStorage::F64));
                for theta in THETAS {
                    let case = format!("prior per sample {per_sample}, bias {bias}");
                    assert_matches_plain(&fused, &plain, &theta, &case);
                }
            }
        }
    }

    /// The same over the sweep of theta, on toy catalogs.
    fn fused_kernel_matches_over_a_sweep_of_theta(isa: Isa) {
        for seed in 0..8 {
            let cat = &sweep_catalog(seed);
            for bias in [false, true] {
                let (fused, plain) = fused_and_plain(cat, Gaussian, bias, isa);
                for theta in sweep() {
                    assert_matches_plain(&fused, &plain, &theta, &format!("seed {seed}, bias {bias}"));
                }
            }
        }
    }

    /// The Schechter family's forms at theta (as the likelihood makes them).
    fn schechter_models() -> Vec<(&'static str, Population)> {
        use crate::model::schechter::{DoubleSchechter, Schechter};
        let single = |amplitude| {
            Population::Schechter(Schechter {
                lo: 8.0,
                hi: 12.5,
                amplitude,
            })
        };
        vec![
            ("schechter", single(false)),
            ("schechter with amplitude", single(true)),
            (
                "double_schechter",
                Population::DoubleSchechter(DoubleSchechter { lo: 8.0, hi: 12.5 }),
            ),
        ]
    }

    /// Log-mass-like samples (the same ragged counts, groups and prior
    /// kinds as [`catalog`]) around 8 to 12, some objects straddling the
    /// support's edges (samples outside [8, 12.5] get weight 0) and one
    /// entirely below it when `with_empty`.
    fn mass_catalog(per_sample_prior: bool, with_empty: bool) -> SampleCatalog {
        let base = catalog(per_sample_prior);
        let mut samples = Vec::new();
        let mut ln_prior = Vec::new();
        for i in 0..base.n_obj() {
            let obj = base.object(i);
            // Values 2.25..6.65 map to 8.3..12.3 in log mass; every
            // seventh object of three or more samples is centred on 7.9,
            // straddling the lower edge, every eleventh on 12.6.
            let mut m: Vec<f64> = obj.values.iter().map(|v| 8.3 + (v - 2.25) * 0.9).collect();
            let centre = m.iter().sum::<f64>() / m.len() as f64;
            let target = match (m.len() >= 3, i % 7, i % 11) {
                (true, 0, _) => 7.9,
                (true, _, 0) => 12.6,
                _ => centre,
            };
            m.iter_mut().for_each(|v| *v += target - centre);
            samples.push(m);
            ln_prior.push((0..obj.n_samples()).map(|j| obj.ln_prior(j)).collect::<Vec<_>>());
        }
        let outside = samples
            .iter()
            .flatten()
            .filter(|&&x| !(8.0..=12.5).contains(&x))
            .count();
        assert!(outside > 0, "some samples outside the support");
        assert!(
            samples.iter().all(|s| s.iter().any(|x| (8.0..=12.5).contains(x))),
            "every object has a sample inside"
        );
        if with_empty {
            samples.push(vec![7.0, 7.5, 7.9]);
            ln_prior.push(vec![0.0; 3]);
        }
        SampleCatalog::from_objects(&samples, Some(&ln_prior)).unwrap()
    }

    /// Thetas over the family's range: x* from 9 to 12, faint-end slopes
    /// from -2.5 to 1 (rising and falling terms, peaks inside and outside
    /// objects' ranges), amplitudes -5 to -1; and extremes (x* far below
    /// the samples: every cut-off term huge, the exact pass).
    fn schechter_sweep(n_params: usize) -> Vec<Vec<f64>> {
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(9);
        let mut thetas: Vec<Vec<f64>> = (0..60)
            .map(|_| {
                let mut t = vec![
                    rng.random_range(9.0..12.0),
                    rng.random_range(-2.5..1.0),
                    rng.random_range(-2.5..1.0),
                    rng.random_range(-5.0..-1.0),
                    rng.random_range(-5.0..-1.0),
                ];
                if n_params == 3 {
                    t[2] = t[3];
                }
                t.truncate(n_params);
                t
            })
            .collect();
        for extreme in [
            [4.0, -1.2, -0.5, -3.0, -3.0],
            [13.5, 0.9, -2.4, -4.0, -1.5],
            [10.5, -1.0, -1.0, -2.0, -2.0],
        ] {
            let mut t = extreme.to_vec();
            if n_params == 3 {
                t[2] = t[3];
            }
            t.truncate(n_params);
            thetas.push(t);
        }
        thetas
    }

    /// The fused Schechter-family kernels (single, with and without the
    /// amplitude, and double) against the general kernel: value and
    /// gradient to 1e-12, over the sweep, with and without the bias
    /// correction, flat and per-sample priors, samples outside the support;
    /// and an object with no sample inside it gives -inf in both.
    fn schechter_kernels_match_the_straightforward_one(isa: Isa) {
        for per_sample in [false, true] {
            let cat = mass_catalog(per_sample, false);
            for (name, model) in schechter_models() {
                for bias in [false, true] {
                    let (fused, plain) = fused_and_plain(&cat, model.clone(), bias, isa);
                    for theta in schechter_sweep(model.n_params()) {
                        let case = format!("{name}, prior per sample {per_sample}, bias {bias}");
                        assert_matches_plain(&fused, &plain, &theta, &case);
                    }
                }
            }
        }
        let cat = mass_catalog(true, true);
        for (name, model) in schechter_models() {
            let (fused, plain) = fused_and_plain(&cat, model.clone(), true, isa);
            let theta = &schechter_sweep(model.n_params())[0];
            assert_eq!(plain.ln_likelihood(theta), f64::NEG_INFINITY, "{name}");
            assert_eq!(fused.ln_likelihood(theta), f64::NEG_INFINITY, "{name}");
            let mut g = vec![0.0; theta.len()];
            assert_eq!(
                fused.ln_likelihood_grad(theta, &mut g),
                f64::NEG_INFINITY,
                "{name}"
            );
        }
    }

    /// Two-component mixtures over the test catalog's range (values 2 to
    /// 7): means 1.5 to 7.5, widths e^-2 to e^1 (narrow components far
    /// from the samples: the exact pass), fractions 0.05 to 0.95.
    fn mixture_sweep() -> Vec<Vec<f64>> {
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(13);
        (0..60)
            .map(|_| {
                vec![
                    rng.random_range(1.5..7.5),
                    rng.random_range(1.5..7.5),
                    rng.random_range(-2.0f64..1.0).exp(),
                    rng.random_range(-2.0f64..1.0).exp(),
                    rng.random_range(0.05..0.95),
                ]
            })
            .collect()
    }

    /// The fused two-component mixture kernel against the general one:
    /// value and gradient to 1e-12 over the sweep, bias on and off, both
    /// prior kinds.
    fn mixture_kernel_matches_the_straightforward_one(isa: Isa) {
        let model = Population::Mixture(crate::model::mixture::Mixture { k: 2 });
        for per_sample in [false, true] {
            let cat = catalog(per_sample);
            for bias in [false, true] {
                let (fused, plain) = fused_and_plain(&cat, model.clone(), bias, isa);
                for theta in mixture_sweep() {
                    let case = format!("mixture, prior per sample {per_sample}, bias {bias}");
                    assert_matches_plain(&fused, &plain, &theta, &case);
                }
            }
        }
    }

    /// A vector copy equals the scalar definition with fused multiply-adds
    /// bit for bit (same lanes, same operations), over the sweep of theta
    /// (the exact pass included) on the test catalog (groups, ragged
    /// objects, both prior kinds) and a toy for the Gaussian, and on the
    /// log-mass catalog for the Schechter family; the portable copy (no FMA)
    /// differs from it by rounding only.
    fn vector_engines_equal_the_scalar_definition(isa: Isa) {
        let gaussian = Population::Gaussian(Gaussian);
        let cases: Vec<(SampleCatalog, Population, Vec<Vec<f64>>)> = vec![
            (
                catalog(true),
                gaussian.clone(),
                sweep().iter().map(|t| t.to_vec()).collect(),
            ),
            (
                sweep_catalog(3),
                gaussian,
                sweep().iter().map(|t| t.to_vec()).collect(),
            ),
        ]
        .into_iter()
        .chain(schechter_models().into_iter().map(|(_, m)| {
            let thetas = schechter_sweep(m.n_params());
            (mass_catalog(true, false), m, thetas)
        }))
        .chain([(
            catalog(true),
            Population::Mixture(crate::model::mixture::Mixture { k: 2 }),
            mixture_sweep(),
        )])
        .collect();
        for (c, (cat, model, thetas)) in cases.iter().enumerate() {
            let block = (0, cat.n_obj());
            let feature = model.kernel_feature().unwrap();
            for storage in [SampleStorage::F64, SampleStorage::F32] {
                let store = FusedStore::new(cat, storage, &[block], feature, model.kernel_support()).unwrap();
                if c == 0 {
                    let groups = store.items.iter().filter(|item| item.group).count();
                    assert_eq!(groups, 4, "the test catalog's groups of eight");
                }
                for theta in thetas {
                    let mut form = KernelForm::default();
                    assert!(model.kernel_form(theta, &mut form));
                    let form = if feature == Feature::Square && form.terms == 1 {
                        form.centred(2).unwrap()
                    } else {
                        form
                    };
                    check_engine(
                        &store,
                        &form,
                        block,
                        isa,
                        &format!("{}: case {c}, {storage:?}, theta {theta:?}", isa.name()),
                    );
                }
            }
        }
    }

    /// One form on one store: the copy for `isa` against the scalar definition.
    fn check_engine(store: &FusedStore, form: &KernelForm, block: (usize, usize), isa: Isa, case: &str) {
        use crate::math::fastmath::Fused;
        let want = store.block_body::<Scalar<Fused>, true, true>(form, block);
        let want_value = store.block_body::<Scalar<Fused>, false, false>(form, block);
        let got = store.block::<true, true>(form, block, isa);
        let got_value = store.block::<false, false>(form, block, isa);
        if isa == Isa::Portable {
            // ln L to 1e-13; the M's to 1e-13 of their scale.
            let scale = want[1..].iter().fold(1e-300f64, |a, v| a.max(v.abs()));
            assert!(
                rel(got[0], want[0]) < 1e-13 || got[0] == want[0],
                "{case}: {} vs {}",
                got[0],
                want[0]
            );
            for k in 1..BLOCK_OUT {
                assert!((got[k] - want[k]).abs() < 1e-13 * scale, "{case}: {k}");
            }
            assert!(
                rel(got_value[0], want_value[0]) < 1e-13 || got_value[0] == want_value[0],
                "{case}"
            );
        } else {
            assert_eq!(got.map(f64::to_bits), want.map(f64::to_bits), "{case}");
            assert_eq!(got_value[0].to_bits(), want_value[0].to_bits(), "{case}");
        }
    }

    /// A bound far above every weight (samples at -40 and +40 around a
    /// population at 0 of width 1: bound q = 0, true maximum -800) must
    /// not underflow: the object is re-run with its exact maximum.
    fn loose_bound_falls_back_to_the_exact_maximum(isa: Isa) {
        let cat = SampleCatalog::from_objects(&[vec![-40.0, 40.0, -41.0], vec![0.1, 0.2]], None).unwrap();
        let (like, plain) = fused_and_plain(&cat, Gaussian, false, isa);
        let theta = [0.0, 1.0];
        let ln_p = |x: f64| -0.5 * x * x - 0.5 * (2.0 * std::f64::consts::PI).ln();
        // logsumexp by hand: object 0 is dominated by its two samples at 40.
        let l0 = {
            let v = [ln_p(-40.0), ln_p(40.0), ln_p(-41.0)];
            let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln() - 3f64.ln()
        };
        let l1 = ((ln_p(0.1).exp() + ln_p(0.2).exp()) / 2.0).ln();
        let mut g = [0.0; 2];
        let got = like.ln_likelihood_grad(&theta, &mut g);
        assert!(rel(got, l0 + l1) < 1e-13, "{got} vs {}", l0 + l1);
        assert!(rel(like.ln_likelihood(&theta), l0 + l1) < 1e-13);
        // d/d theta_mu of object 0: weighted mean of d = x - mu (weights
        // 1, 1, e^-40.5 relative): about 0, since +-40 cancel.
        let mut g2 = [0.0; 2];
        plain.ln_likelihood_grad(&theta, &mut g2);
        for k in 0..2 {
            assert!(
                (g[k] - g2[k]).abs() < 1e-12 * g2[1].abs(),
                "{k}: {} vs {}",
                g[k],
                g2[k]
            );
        }
    }

    /// The same inside a group of eight: only the loose lane is re-run,
    /// and the group gives what the general kernel gives.
    fn loose_bound_in_a_group_falls_back_for_that_lane(isa: Isa) {
        let mut objects = vec![vec![0.1, 0.2, 0.15]; 8];
        objects[5] = vec![-40.0, 40.0, -41.0];
        let cat = SampleCatalog::from_objects(&objects, None).unwrap();
        let store = FusedStore::new(&cat, SampleStorage::F64, &[(0, 8)], Feature::Square, None).unwrap();
        assert!(store.items[0].group);
        for bias in [false, true] {
            let (fused, plain) = fused_and_plain(&cat, Gaussian, bias, isa);
            assert_matches_plain(&fused, &plain, &[0.0, 1.0], &format!("bias {bias}"));
        }
    }

    /// One test per compiled copy of the kernels, named after it
    /// (`on_avx2::...`), so the output says which copies ran; each checks
    /// its copy whatever POPINF_ISA says. A copy this CPU cannot run (AVX-512
    /// on an AVX2 machine) says so on stderr and checks nothing.
    macro_rules! engine_tests {
        ($module:ident, $isa:expr, [$($test:ident),* $(,)?]) => {
            mod $module {
                $(
                    #[test]
                    fn $test() {
                        let isa: super::Isa = $isa;
                        if !isa.is_available() {
                            eprintln!("not run: this CPU cannot run the {} copy", isa.name());
                            return;
                        }
                        super::$test(isa);
                    }
                )*
            }
        };
    }

    macro_rules! every_engine {
        ($($test:ident),* $(,)?) => {
            engine_tests!(on_avx512, super::Isa::Avx512, [$($test),*]);
            engine_tests!(on_avx2, super::Isa::Avx2, [$($test),*]);
            engine_tests!(on_portable, super::Isa::Portable, [$($test),*]);
        };
    }

    every_engine!(
        fused_kernel_matches_the_straightforward_one,
        fused_kernel_matches_over_a_sweep_of_theta,
        schechter_kernels_match_the_straightforward_one,
        mixture_kernel_matches_the_straightforward_one,
        vector_engines_equal_the_scalar_definition,
        loose_bound_falls_back_to_the_exact_maximum,
        loose_bound_in_a_group_falls_back_for_that_lane,
    );

    /// Every x86-64 CPU popinf's vector copies need has them in order:
    /// an AVX-512 machine also runs (and so tests) the AVX2 and portable
    /// copies; asking for a copy the CPU lacks is an error, not a crash.
    #[test]
    fn available_engines_include_every_narrower_one() {
        let available = crate::math::fastmath::available_isas();
        assert_eq!(available.last(), Some(&Isa::Portable));
        // Against the CPU's own feature flags, not popinf's detection.
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let avx2 = has!("avx2") && has!("fma");
            let avx512 = avx2 && has!("avx512f") && has!("avx512dq") && has!("avx512vl");
            assert_eq!(available.contains(&Isa::Avx2), avx2);
            assert_eq!(available.contains(&Isa::Avx512), avx512);
        }
        let cat = catalog(false);
        for isa in Isa::ALL {
            let like = ImportanceLikelihood::new(&cat, Gaussian).unwrap().with_isa(isa);
            assert_eq!(like.is_ok(), available.contains(&isa), "{}", isa.name());
        }
    }

    /// Float32 storage: each value is rounded as its offset from the
    /// object's smallest sample, |error| <= 2^-24 (hi_i - lo_i), so
    /// |d ln L| <= sum_i max_j |q'(d_ij)| 2^-24 (hi_i - lo_i) plus the same
    /// for ln pi; the measured error must lie within that bound, and the
    /// bound itself is small (ln L to ~1e-9 relative here).
    #[test]
    fn float32_storage_error_is_within_its_rounding_bound() {
        let toy = crate::data::simulate::simulate_gaussian_toy(&crate::data::simulate::ToySettings {
            n_obj: 3000,
            n_samp: 100,
            ..Default::default()
        })
        .unwrap();
        let cat = &toy.catalog;
        let f64s = ImportanceLikelihood::new(cat, Gaussian).unwrap();
        let f32s = ImportanceLikelihood::new(cat, Gaussian)
            .unwrap()
            .with_storage(SampleStorage::F32)
            .unwrap();
        assert_eq!(f32s.storage(), Some(SampleStorage::F32));
        let theta = [0.05, 0.97];
        let (mut g64, mut g32) = ([0.0; 2], [0.0; 2]);
        let v64 = f64s.ln_likelihood_grad(&theta, &mut g64);
        let v32 = f32s.ln_likelihood_grad(&theta, &mut g32);
        let eps = f32::EPSILON as f64 / 2.0;
        let s2 = theta[1] * theta[1];
        // Per object: every d moves by at most e_i = 2^-24 (hi_i - lo_i),
        // so ln p moves by at most delta_i = max|q'(d)| e_i = max|d| e_i /
        // sigma^2. That bounds |d ln L_i| by delta_i; the gradient, a
        // weighted mean of g(d) = (d / sigma^2, d^2 / sigma^3 - 1 / sigma),
        // moves by at most max|g'| e_i (g at moved points) plus
        // (e^(2 delta_i) - 1) max|g| (weights moved by e^(+-delta_i)).
        let (mut bound, mut bound_g) = (0.0, [0.0; 2]);
        for i in 0..cat.n_obj() {
            let v = cat.object(i).values;
            let (lo, hi) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| {
                (l.min(x), h.max(x))
            });
            let d_max = (lo - theta[0]).abs().max((hi - theta[0]).abs());
            let e_i = eps * (hi - lo);
            let delta = d_max * e_i / s2;
            let reweight = (2.0 * delta).exp_m1();
            bound += delta;
            bound_g[0] += e_i / s2 + reweight * d_max / s2;
            bound_g[1] +=
                2.0 * d_max * e_i / (s2 * theta[1]) + reweight * (d_max * d_max / s2 + 1.0) / theta[1];
        }
        let err = (v32 - v64).abs();
        assert!(err <= bound, "error {err} above bound {bound}");
        assert!(bound / v64.abs() < 1e-6, "bound {bound} vs |ln L| {}", v64.abs());
        assert!(err > 0.0, "float32 storage changed nothing: is it in use?");
        for k in 0..2 {
            let err_g = (g32[k] - g64[k]).abs();
            assert!(
                err_g <= bound_g[k],
                "gradient {k}: error {err_g} above bound {}",
                bound_g[k]
            );
        }
        eprintln!(
            "float32 storage: |d ln L| = {err:.3e} (bound {bound:.3e}) of {v64:.3}; gradient errors {:.3e}, {:.3e} \
             (bounds {:.3e}, {:.3e}) of {:.3}, {:.3}",
            (g32[0] - g64[0]).abs(),
            (g32[1] - g64[1]).abs(),
            bound_g[0],
            bound_g[1],
            g64[0],
            g64[1]
        );
    }

    /// The bench's two references compute what they claim: sum of exp
    /// (the kernel's exp, 1e-14 relative of libm's) and a plain sum.
    #[test]
    fn bench_references_sum_what_they_claim() {
        let buf: Vec<f64> = (0..1003).map(|i| -30.0 * i as f64 / 1003.0).collect();
        let want: f64 = buf.iter().map(|v| v.exp()).sum();
        assert!(rel(exp_reference_sum(&buf), want) < 1e-14);
        let x32: Vec<f32> = (0..1003).map(|i| i as f32 * 0.5).collect();
        let x64: Vec<f64> = x32.iter().map(|&v| v as f64).collect();
        let exact = 0.5 * (1002.0 * 1003.0 / 2.0);
        assert_eq!(StoredSamples::F64(&x64).read_all(100), exact);
        assert_eq!(StoredSamples::F32(&x32).read_all(7), exact);
        assert_eq!(StoredSamples::F32(&x32).bytes(), 4012);
    }

    #[test]
    fn float32_storage_needs_the_fused_kernel() {
        let cat = catalog(false);
        let err = ImportanceLikelihood::new(
            &cat,
            crate::model::library::Population::Beta(crate::model::beta::Beta),
        )
        .map(|l| l.with_storage(SampleStorage::F32));
        assert!(matches!(err, Ok(Err(_))));
    }
}
