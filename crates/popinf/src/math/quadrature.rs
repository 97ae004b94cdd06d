//! Adaptive Gauss–Kronrod (7/15 points, QUADPACK's QAG rule) for
//! vector-valued integrands: a normalising constant and its gradient in
//! one pass, so the gradient is that of the computed constant.

/// Kronrod nodes (non-negative half; symmetric), from QUADPACK's qk15.
const XGK: [f64; 8] = [
    0.991_455_371_120_812_6,
    0.949_107_912_342_758_5,
    0.864_864_423_359_769_1,
    0.741_531_185_599_394_4,
    0.586_087_235_467_691_1,
    0.405_845_151_377_397_2,
    0.207_784_955_007_898_5,
    0.0,
];
const WGK: [f64; 8] = [
    0.022_935_322_010_529_22,
    0.063_092_092_629_978_55,
    0.104_790_010_322_250_2,
    0.140_653_259_715_525_9,
    0.169_004_726_639_267_9,
    0.190_350_578_064_785_4,
    0.204_432_940_075_298_9,
    0.209_482_141_084_727_8,
];
/// Gauss weights for the nodes XGK[1], XGK[3], XGK[5], XGK[7].
const WG: [f64; 4] = [
    0.129_484_966_168_869_7,
    0.279_705_391_489_276_7,
    0.381_830_050_505_118_9,
    0.417_959_183_673_469_4,
];

/// One panel's Kronrod estimate (per component) and error (max over
/// components of |Kronrod - Gauss|).
fn gk15(
    f: &mut dyn FnMut(f64, &mut [f64]),
    a: f64,
    b: f64,
    m: usize,
    buf: &mut [f64],
    out: &mut [f64],
) -> f64 {
    let c = 0.5 * (a + b);
    let h = 0.5 * (b - a);
    let mut gauss = vec![0.0; m];
    out[..m].fill(0.0);
    let mut add =
        |x: f64, wk: f64, wg: f64, out: &mut [f64], gauss: &mut [f64], f: &mut dyn FnMut(f64, &mut [f64])| {
            f(x, &mut buf[..m]);
            for k in 0..m {
                out[k] += wk * buf[k];
                gauss[k] += wg * buf[k];
            }
        };
    add(c, WGK[7], WG[3], out, &mut gauss, f);
    for i in 0..7 {
        let wg = if i % 2 == 1 { WG[i / 2] } else { 0.0 };
        let dx = h * XGK[i];
        add(c - dx, WGK[i], wg, out, &mut gauss, f);
        add(c + dx, WGK[i], wg, out, &mut gauss, f);
    }
    let mut err: f64 = 0.0;
    for k in 0..m {
        out[k] *= h;
        gauss[k] *= h;
        err = err.max((out[k] - gauss[k]).abs());
    }
    err
}

/// Integrates the `m` components of `f` over `[a, b]`, first split into
/// 16 equal panels and at the interior `breaks` (kinks, steps), so that
/// no feature wider than a sixteenth of the range is missed, then bisecting the panel with the
/// largest error until the total error is below `rel_tol` times the
/// first component's magnitude (plus `abs_tol`) or `max_panels` is
/// reached. Returns the integrals; the error estimate is the second value.
pub fn integrate(
    f: &mut dyn FnMut(f64, &mut [f64]),
    a: f64,
    b: f64,
    breaks: &[f64],
    m: usize,
    rel_tol: f64,
    abs_tol: f64,
) -> (Vec<f64>, f64) {
    const MAX_PANELS: usize = 2000;
    const INITIAL: usize = 16;
    let mut edges: Vec<f64> = (0..=INITIAL)
        .map(|i| a + (b - a) * i as f64 / INITIAL as f64)
        .collect();
    edges[INITIAL] = b;
    edges.extend(breaks.iter().copied().filter(|&x| x > a && x < b));
    edges.sort_by(f64::total_cmp);
    edges.dedup();
    let mut buf = vec![0.0; m];
    // (a, b, estimate, error)
    let mut panels: Vec<(f64, f64, Vec<f64>, f64)> = Vec::new();
    for w in edges.windows(2) {
        if w[1] > w[0] {
            let mut est = vec![0.0; m];
            let err = gk15(f, w[0], w[1], m, &mut buf, &mut est);
            panels.push((w[0], w[1], est, err));
        }
    }
    loop {
        let total: f64 = panels.iter().map(|p| p.2[0]).sum();
        let err: f64 = panels.iter().map(|p| p.3).sum();
        if err <= rel_tol * total.abs() + abs_tol || panels.len() >= MAX_PANELS {
            let mut sums = vec![0.0; m];
            for p in &panels {
                for (s, v) in sums.iter_mut().zip(&p.2) {
                    *s += v;
                }
            }
            return (sums, err);
        }
        let worst = panels
            .iter()
            .enumerate()
            .max_by(|x, y| x.1.3.total_cmp(&y.1.3))
            .map(|(i, _)| i)
            .expect("at least one panel");
        let (pa, pb, _, _) = panels.swap_remove(worst);
        let mid = 0.5 * (pa + pb);
        if mid <= pa || mid >= pb {
            // Cannot split further in floating point: accept as is.
            let mut est = vec![0.0; m];
            let err = gk15(f, pa, pb, m, &mut buf, &mut est);
            panels.push((pa, pb, est, 0.0 * err));
            continue;
        }
        for (lo, hi) in [(pa, mid), (mid, pb)] {
            let mut est = vec![0.0; m];
            let err = gk15(f, lo, hi, m, &mut buf, &mut est);
            panels.push((lo, hi, est, err));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_forms() {
        // [x^2, sin x, exp(-x)] over [0, pi].
        let mut f = |x: f64, out: &mut [f64]| {
            out[0] = x * x;
            out[1] = x.sin();
            out[2] = (-x).exp();
        };
        let pi = std::f64::consts::PI;
        let (v, err) = integrate(&mut f, 0.0, pi, &[], 3, 1e-13, 0.0);
        assert!((v[0] - pi.powi(3) / 3.0).abs() < 1e-12);
        assert!((v[1] - 2.0).abs() < 1e-12);
        assert!((v[2] - (1.0 - (-pi).exp())).abs() < 1e-12);
        assert!(err < 1e-11);
    }

    #[test]
    fn kinks_and_peaks() {
        // |x - 0.3| over [0, 1] = 0.045 + 0.245 = 0.29, with the kink as a
        // break; a Gaussian peak a fiftieth of the range wide.
        let mut f = |x: f64, out: &mut [f64]| out[0] = (x - 0.3).abs();
        let (v, _) = integrate(&mut f, 0.0, 1.0, &[0.3], 1, 1e-14, 0.0);
        assert!((v[0] - 0.29).abs() < 1e-15);
        let s = 0.04;
        let mut g = |x: f64, out: &mut [f64]| {
            out[0] = (-0.5 * ((x - 0.2) / s).powi(2)).exp() / (s * (2.0 * std::f64::consts::PI).sqrt())
        };
        let (v, _) = integrate(&mut g, -1.0, 1.0, &[], 1, 1e-12, 0.0);
        assert!((v[0] - 1.0).abs() < 1e-10, "{}", v[0]);
    }
}
