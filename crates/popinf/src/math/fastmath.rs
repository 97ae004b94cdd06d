//! A vectorisable exp for the importance-sampling kernel.
//!
//! `f64::exp` calls libm one element at a time; the likelihood spends most
//! of its time there. This polynomial exp has the same accuracy where it
//! matters (arguments <= 0, relative error < 1e-14) and is written so LLVM
//! vectorises the loop; on x86-64 a copy compiled for AVX-512 or AVX2 is picked at run
//! time, so the default build stays portable.

pub(crate) const LOG2E: f64 = std::f64::consts::LOG2_E;
// ln 2 split so that n * LN2_HI is exact for |n| < 2^11 (Cody & Waite).
pub(crate) const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
pub(crate) const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);
// Adding 1.5 * 2^52 rounds to the nearest integer and leaves it in the low
// mantissa bits, avoiding a float-to-int conversion AVX2 lacks.
pub(crate) const ROUND_MAGIC: f64 = 6_755_399_441_055_744.0;
/// Taylor coefficients of e^r, highest degree (11) first, for Horner.
pub(crate) const EXP_POLY: [f64; 12] = [
    1.0 / 39_916_800.0,
    1.0 / 3_628_800.0,
    1.0 / 362_880.0,
    1.0 / 40_320.0,
    1.0 / 5_040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
    1.0,
    1.0,
];
/// Below this argument exp gives exactly 0.
pub(crate) const EXP_MIN: f64 = -708.0;

/// Coefficients of 2^r = e^(r ln 2): EXP_POLY's times (ln 2)^k, highest
/// degree (11) first.
pub(crate) const EXP2_POLY: [f64; 12] = {
    let mut c = EXP_POLY;
    let mut pow = 1.0;
    let mut k = 0;
    while k < 12 {
        c[11 - k] = EXP_POLY[11 - k] * pow;
        pow *= std::f64::consts::LN_2;
        k += 1;
    }
    c
};
/// Below this (base-2) argument [`exp2_with`] gives 0.
pub(crate) const EXP2_MIN: f64 = -1020.0;

/// a * b + c, as one fused instruction or as two. Rust never contracts
/// `a * b + c` into an FMA on its own, and `f64::mul_add` on a CPU without
/// FMA is a slow software routine; so the kernels are generic over this,
/// and their FMA-capable copies take [`Fused`].
pub trait MulAdd {
    fn mul_add(a: f64, b: f64, c: f64) -> f64;
}

/// One rounding: the hardware FMA.
pub struct Fused;
/// Two roundings: a multiply then an add (any CPU).
pub struct Separate;

impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f64, b: f64, c: f64) -> f64 {
        a.mul_add(b, c)
    }
}

impl MulAdd for Separate {
    #[inline(always)]
    fn mul_add(a: f64, b: f64, c: f64) -> f64 {
        a * b + c
    }
}

/// exp(x) for x in [-708, 0]; arguments below -708 give 0 (they are weights
/// more than e^-708 below the largest, negligible in any sum). Relative error
/// below 1e-14.
#[inline(always)]
pub(crate) fn exp_nonpositive(x: f64) -> f64 {
    exp_nonpositive_with::<Separate>(x)
}

/// [`exp_nonpositive`] with the multiply-adds done by `A`.
#[inline(always)]
pub(crate) fn exp_nonpositive_with<A: MulAdd>(x: f64) -> f64 {
    let y = exp_reduced::<A>(x.max(EXP_MIN));
    if x < EXP_MIN { 0.0 } else { y }
}

/// 2^y for y in [-1020, 1020], 0 below (and for NaN), with the
/// multiply-adds done by `A` (above 1023 the 2^n bit trick wraps round the
/// exponent field; the fused kernel never gets there: see its `bound`): y = n + r, |r| <= 1/2, 2^r = e^(r ln 2) by
/// the same Taylor series as [`exp_nonpositive`] (truncation < 7e-15
/// relative), times 2^n. The fused kernel works in base 2: its weights'
/// exponents are quadratics, so the factor log2(e) folds into their
/// coefficients and the reduction is one subtraction, not two multiply-adds.
#[inline(always)]
pub(crate) fn exp2_with<A: MulAdd>(y: f64) -> f64 {
    if y.is_nan() || y < EXP2_MIN {
        return 0.0;
    }
    let t = y + ROUND_MAGIC;
    let n = t - ROUND_MAGIC;
    // Exact: n is y rounded to the nearest integer.
    let r = y - n;
    poly_times_pow2::<A>(&EXP2_POLY, r, t)
}

/// The polynomial `coeffs` (Horner, highest degree first) at r, times 2^n
/// for the integer n left in t's low bits (t = n + ROUND_MAGIC, n >= -1022).
#[inline(always)]
fn poly_times_pow2<A: MulAdd>(coeffs: &[f64; 12], r: f64, t: f64) -> f64 {
    let mut p = coeffs[0];
    for &c in &coeffs[1..] {
        p = A::mul_add(p, r, c);
    }
    // 2^n from t's low bits: exponent field n + 1023.
    p * f64::from_bits((t.to_bits().wrapping_add(1023)) << 52)
}

/// e^x for x in [-708, 709]: x = n ln2 + r, Taylor series of e^r to r^11 on
/// |r| <= ln2/2 (truncation (ln2/2)^12/12! < 7e-15 relative), times 2^n.
#[inline(always)]
fn exp_reduced<A: MulAdd>(xc: f64) -> f64 {
    let t = A::mul_add(xc, LOG2E, ROUND_MAGIC);
    let n = t - ROUND_MAGIC;
    let r = A::mul_add(-n, LN2_LO, A::mul_add(-n, LN2_HI, xc));
    poly_times_pow2::<A>(&EXP_POLY, r, t)
}

/// exp(x) for x in [-708, 709] (the population models' exponents, e.g.
/// 10^(x - x*)): the same reduction and polynomial as
/// `exp_nonpositive`, without the clamp to 0. Relative error < 1e-14.
#[inline(always)]
pub fn exp_bounded(x: f64) -> f64 {
    exp_reduced::<Separate>(x.clamp(-708.0, 709.0))
}

/// ln y for y in [1, 2] (e.g. ln(1 + e^-d) of a two-term logsumexp):
/// y = m 2^e with m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s), s = (m -
/// 1)/(m + 1), |s| < 0.172, series to s^21 (truncation < 1e-17).
/// Branch-free so it vectorises.
#[inline(always)]
pub fn ln_one_to_two(y: f64) -> f64 {
    let big = y > std::f64::consts::SQRT_2;
    let m = if big { 0.5 * y } else { y };
    let e = if big { 1.0 } else { 0.0 };
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut p = 1.0 / 21.0;
    p = p * s2 + 1.0 / 19.0;
    p = p * s2 + 1.0 / 17.0;
    p = p * s2 + 1.0 / 15.0;
    p = p * s2 + 1.0 / 13.0;
    p = p * s2 + 1.0 / 11.0;
    p = p * s2 + 1.0 / 9.0;
    p = p * s2 + 1.0 / 7.0;
    p = p * s2 + 1.0 / 5.0;
    p = p * s2 + 1.0 / 3.0;
    p = p * s2 + 1.0;
    e * std::f64::consts::LN_2 + 2.0 * s * p
}

/// Independent accumulators per reduction. A float sum in element order is
/// a serial dependency chain the compiler may not reorder; eight lanes let
/// it use two 4-wide vectors, and fixing the lane count (not the vector
/// width) keeps the result identical on every machine.
pub const LANES: usize = 8;

/// The lanes' total, in the order a vector reduction takes them: halves
/// added (lane l + lane l+4), then quarters, then the last pair.
#[inline(always)]
pub(crate) fn sum_lanes(acc: [f64; LANES]) -> f64 {
    ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
}

/// Replaces every `v` in `buf` by `exp(v - shift)` and returns their sum.
/// `shift` must be at least the maximum of `buf` (the logsumexp shift), so
/// that every argument is <= 0.
#[inline(always)]
pub fn exp_shifted_sum_lanes(buf: &mut [f64], shift: f64) -> f64 {
    let mut acc = [0.0; LANES];
    let mut chunks = buf.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for (a, v) in acc.iter_mut().zip(c.iter_mut()) {
            let w = exp_nonpositive(*v - shift);
            *v = w;
            *a += w;
        }
    }
    for (a, v) in acc.iter_mut().zip(chunks.into_remainder()) {
        let w = exp_nonpositive(*v - shift);
        *v = w;
        *a += w;
    }
    sum_lanes(acc)
}

/// As [`exp_shifted_sum_lanes`] on `storage[..len]`, after filling up to
/// the next multiple of the lane count with -inf (weight 0): the tail then
/// runs in the vector loop instead of one scalar exp at a time.
/// `storage.len()` must be a multiple of [`LANES`] and at least `len`.
#[inline(always)]
pub fn exp_shifted_sum_padded(storage: &mut [f64], len: usize, shift: f64) -> f64 {
    let padded = len.next_multiple_of(LANES);
    storage[len..padded].fill(f64::NEG_INFINITY);
    exp_shifted_sum_lanes(&mut storage[..padded], shift)
}

/// sum_j a_j b_j with lane accumulators.
#[inline(always)]
pub fn dot_lanes(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    for (l, (x, y)) in ra.iter().zip(rb).enumerate() {
        acc[l] += x * y;
    }
    sum_lanes(acc)
}

/// `ln_w[j] -= ln_interim_prior[j]` for all j, returning the maximum.
#[inline(always)]
pub fn subtract_max_lanes(ln_w: &mut [f64], ln_interim_prior: &[f64]) -> f64 {
    let mut acc = [f64::NEG_INFINITY; LANES];
    let n = ln_w.len();
    let lp = &ln_interim_prior[..n];
    let mut cw = ln_w.chunks_exact_mut(LANES);
    let mut cp = lp.chunks_exact(LANES);
    for (w, p) in (&mut cw).zip(&mut cp) {
        for l in 0..LANES {
            w[l] -= p[l];
            // A plain comparison (not f64::max) vectorises to vmaxpd.
            acc[l] = if w[l] > acc[l] { w[l] } else { acc[l] };
        }
    }
    for (l, (w, p)) in cw.into_remainder().iter_mut().zip(cp.remainder()).enumerate() {
        *w -= p;
        acc[l] = if *w > acc[l] { *w } else { acc[l] };
    }
    acc.iter()
        .fold(f64::NEG_INFINITY, |m, &v| if v > m { v } else { m })
}

/// `ln_w[j] -= c` for all j, returning the maximum: the constant-interim-
/// prior form of [`subtract_max_lanes`], same arithmetic, same bits.
#[inline(always)]
pub fn subtract_const_max_lanes(ln_w: &mut [f64], c: f64) -> f64 {
    let mut acc = [f64::NEG_INFINITY; LANES];
    let mut cw = ln_w.chunks_exact_mut(LANES);
    for w in &mut cw {
        for l in 0..LANES {
            w[l] -= c;
            acc[l] = if w[l] > acc[l] { w[l] } else { acc[l] };
        }
    }
    for (l, w) in cw.into_remainder().iter_mut().enumerate() {
        *w -= c;
        acc[l] = if *w > acc[l] { *w } else { acc[l] };
    }
    acc.iter()
        .fold(f64::NEG_INFINITY, |m, &v| if v > m { v } else { m })
}

/// The widest instruction set the kernels have a compiled copy for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512 (F, DQ, VL) with FMA: eight float64 per vector.
    Avx512,
    /// AVX2 with FMA: four float64 per vector.
    Avx2,
    /// The build's baseline (SSE2 on x86-64).
    Portable,
}

impl Isa {
    /// Every copy the kernels have, widest first.
    pub const ALL: [Isa; 3] = [Isa::Avx512, Isa::Avx2, Isa::Portable];

    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Portable => "portable",
        }
    }

    /// Whether this CPU can run the copy compiled for this instruction set
    /// (an AVX-512 CPU runs all three; POPINF_ISA does not narrow this).
    pub fn is_available(self) -> bool {
        // Wider sets include the narrower ones (every AVX-512 CPU popinf
        // accepts has AVX2 and FMA: detect_isa asks for all of them).
        match self {
            Isa::Avx512 => detected_isa() == Isa::Avx512,
            Isa::Avx2 => detected_isa() != Isa::Portable,
            Isa::Portable => true,
        }
    }
}

/// The copies this CPU can run, widest first (tests run each of them).
pub fn available_isas() -> Vec<Isa> {
    Isa::ALL.into_iter().filter(|isa| isa.is_available()).collect()
}

/// The instruction set of this CPU (detection cached by std). Set
/// POPINF_ISA=avx2 or portable to force a narrower copy (for comparisons).
pub fn isa() -> Isa {
    static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    *ISA.get_or_init(|| {
        let detected = detected_isa();
        match std::env::var("POPINF_ISA").as_deref() {
            Ok("portable") => Isa::Portable,
            Ok("avx2") if detected != Isa::Portable => Isa::Avx2,
            _ => detected,
        }
    })
}

/// The widest instruction set of this CPU, whatever POPINF_ISA says.
fn detected_isa() -> Isa {
    static DETECTED: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    *DETECTED.get_or_init(detect_isa)
}

fn detect_isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512dq") && has!("avx512vl") && has!("avx2") && has!("fma") {
            return Isa::Avx512;
        }
        if has!("avx2") && has!("fma") {
            return Isa::Avx2;
        }
    }
    Isa::Portable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_libm_exp_to_a_few_ulp() {
        let mut worst: f64 = 0.0;
        let n = 200_000;
        for i in 0..=n {
            let x = -700.0 * (i as f64) / (n as f64);
            let got = exp_nonpositive(x);
            let want = x.exp();
            worst = worst.max(((got - want) / want).abs());
        }
        // Truncation bound 7e-15 plus a few ulp of rounding; the
        // importance likelihood needs 1e-10.
        assert!(worst < 1e-14, "worst relative error {worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-800.0), 0.0);
        assert_eq!(exp_nonpositive(f64::NEG_INFINITY), 0.0);
    }

    #[test]
    fn bounded_exp_and_log_match_libm() {
        let mut worst: f64 = 0.0;
        for i in 0..=100_000 {
            let x = -700.0 + 1400.0 * i as f64 / 100_000.0;
            worst = worst.max(((exp_bounded(x) - x.exp()) / x.exp()).abs());
        }
        assert!(worst < 1e-14, "exp: {worst}");
        let mut worst: f64 = 0.0;
        for i in 0..=100_000 {
            let y = 1.0 + i as f64 / 100_000.0;
            worst = worst.max((ln_one_to_two(y) - y.ln()).abs());
        }
        assert!(worst < 4e-16, "ln: {worst}");
        assert_eq!(ln_one_to_two(1.0), 0.0);
    }

    #[test]
    fn shifted_sum_matches_direct_sum() {
        let mut buf: Vec<f64> = (0..1001).map(|i| -0.037 * i as f64 + 3.0).collect();
        let want: f64 = buf.iter().map(|v| (v - 3.0).exp()).sum();
        let got = exp_shifted_sum_lanes(&mut buf, 3.0);
        assert!(((got - want) / want).abs() < 1e-14);
        assert!((buf[10] - (-0.37f64).exp()).abs() < 1e-14);
        // Padding with -inf adds exact zeros.
        let mut storage = [0.0; 16];
        storage[..5].copy_from_slice(&[0.0, -1.0, -2.0, -3.0, -4.0]);
        let padded = exp_shifted_sum_padded(&mut storage, 5, 0.0);
        let direct: f64 = (0..5).map(|i| (-(i as f64)).exp()).sum();
        assert!((padded - direct).abs() < 1e-14 && storage[5..8] == [0.0; 3]);
    }

    #[test]
    fn lane_reductions_match_plain_loops() {
        let a: Vec<f64> = (0..37).map(|i| (i as f64 * 0.7).sin()).collect();
        let b: Vec<f64> = (0..37).map(|i| (i as f64 * 0.3).cos()).collect();
        let want: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot_lanes(&a, &b) - want).abs() < 1e-14);
        let mut w = a.clone();
        let m = subtract_max_lanes(&mut w, &b);
        let want_max = a
            .iter()
            .zip(&b)
            .map(|(x, y)| x - y)
            .fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(m, want_max);
        assert_eq!(w[36], a[36] - b[36]);
    }
}
