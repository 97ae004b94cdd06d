//! Autocorrelation of MCMC chains, and emcee's integrated autocorrelation
//! time (Goodman & Weare 2010; Sokal's adaptive window, as in
//! `emcee/autocorr.py`).

/// In-place radix-2 complex FFT; `re.len()` must be a power of two.
/// `inverse` computes the unnormalised inverse transform.
pub fn fft_in_place(re: &mut [f64], im: &mut [f64], inverse: bool) {
    let n = re.len();
    assert!(
        n.is_power_of_two() && im.len() == n,
        "FFT length must be a power of two"
    );
    // Bit-reversal permutation.
    let mut j = 0;
    for i in 1..n {
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if i < j {
            re.swap(i, j);
            im.swap(i, j);
        }
    }
    let sign = if inverse { 1.0 } else { -1.0 };
    let mut len = 2;
    while len <= n {
        let ang = sign * 2.0 * std::f64::consts::PI / len as f64;
        for start in (0..n).step_by(len) {
            for k in 0..len / 2 {
                // Twiddles computed directly (not by recurrence) to keep
                // rounding error at O(eps log n).
                let (wi, wr) = (ang * k as f64).sin_cos();
                let (a, b) = (start + k, start + k + len / 2);
                let (xr, xi) = (re[b] * wr - im[b] * wi, re[b] * wi + im[b] * wr);
                re[b] = re[a] - xr;
                im[b] = im[a] - xi;
                re[a] += xr;
                im[a] += xi;
            }
        }
        len <<= 1;
    }
}

/// Autocovariance of a 1-D series at every lag, normalised by the series
/// length (as ArviZ's `autocov`): by FFT, zero-padded to at least twice the
/// length so the circular correlation equals the linear one.
pub fn autocovariance(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    if n == 0 {
        return Vec::new();
    }
    let mean = x.iter().sum::<f64>() / n as f64;
    let m = 2 * n.next_power_of_two();
    let mut re = vec![0.0; m];
    let mut im = vec![0.0; m];
    for (r, v) in re.iter_mut().zip(x) {
        *r = v - mean;
    }
    fft_in_place(&mut re, &mut im, false);
    for (r, i) in re.iter_mut().zip(im.iter_mut()) {
        *r = *r * *r + *i * *i;
        *i = 0.0;
    }
    fft_in_place(&mut re, &mut im, true);
    // The unnormalised inverse transform carries a factor m.
    let scale = 1.0 / (m as f64 * n as f64);
    re.truncate(n);
    re.iter_mut().for_each(|r| *r *= scale);
    re
}

/// Normalised autocorrelation function of a 1-D series (as
/// `emcee.autocorr.function_1d`).
pub fn autocorrelation(x: &[f64]) -> Vec<f64> {
    let mut acf = autocovariance(x);
    let Some(&c0) = acf.first() else {
        return acf;
    };
    if c0 == 0.0 {
        // A constant chain: no information on correlation; report none.
        acf.iter_mut().for_each(|a| *a = 0.0);
        acf[0] = 1.0;
        return acf;
    }
    acf.iter_mut().for_each(|a| *a /= c0);
    acf
}

/// emcee's integrated autocorrelation time of one parameter from several
/// chains (walkers) of equal length: the autocorrelation functions are
/// averaged over chains, tau(M) = 1 + 2 sum_{t=1}^{M} rho(t), and the window
/// M is the smallest with M >= c tau(M) (c = 5 in emcee).
pub fn integrated_time(chains: &[&[f64]], c: f64) -> f64 {
    let n = chains.first().map_or(0, |ch| ch.len());
    if n == 0 {
        return f64::NAN;
    }
    let mut f = vec![0.0; n];
    for ch in chains {
        for (fi, a) in f.iter_mut().zip(autocorrelation(ch)) {
            *fi += a;
        }
    }
    let k = chains.len() as f64;
    f.iter_mut().for_each(|v| *v /= k);
    let mut tau = 0.0;
    for (m, &rho) in f.iter().enumerate() {
        // taus[m] = 2 * cumsum(f)[m] - 1
        tau += if m == 0 { rho } else { 2.0 * rho };
        if (m as f64) >= c * tau {
            return tau;
        }
    }
    tau
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    #[test]
    fn autocovariance_is_normalised_by_length() {
        let x = [1.0, 3.0, 2.0, 6.0];
        let acov = autocovariance(&x);
        // mean 3; deviations -2, 0, -1, 3: c0 = 14/4, c1 = (0 + 0 - 3)/4.
        assert!((acov[0] - 3.5).abs() < 1e-14 && (acov[1] + 0.75).abs() < 1e-14);
    }

    #[test]
    fn fft_autocorrelation_equals_direct_sum() {
        let x: Vec<f64> = (0..37).map(|i| ((i * i) % 11) as f64 - 0.3 * i as f64).collect();
        let acf = autocorrelation(&x);
        let mean = x.iter().sum::<f64>() / 37.0;
        let c = |t: usize| {
            (0..37 - t)
                .map(|i| (x[i] - mean) * (x[i + t] - mean))
                .sum::<f64>()
        };
        for (t, a) in acf.iter().enumerate() {
            assert!((a - c(t) / c(0)).abs() < 1e-12, "lag {t}");
        }
    }

    /// For an AR(1) process with coefficient phi, tau = (1 + phi) / (1 - phi).
    #[test]
    fn ar1_integrated_time_matches_theory() {
        let phi: f64 = 0.9;
        let want = (1.0 + phi) / (1.0 - phi); // 19
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(1);
        let chains: Vec<Vec<f64>> = (0..32)
            .map(|_| {
                let mut x = 0.0;
                (0..20_000)
                    .map(|_| {
                        let e: f64 = StandardNormal.sample(&mut rng);
                        x = phi * x + (1.0 - phi * phi).sqrt() * e;
                        x
                    })
                    .collect()
            })
            .collect();
        let refs: Vec<&[f64]> = chains.iter().map(|c| c.as_slice()).collect();
        let tau = integrated_time(&refs, 5.0);
        // The window truncation biases tau low by ~phi^(5 tau) (negligible)
        // and the estimate's own noise is ~1% for 640k draws.
        assert!((tau / want - 1.0).abs() < 0.04, "tau {tau}, want {want}");
    }
}
