//! Density contours of 2-D draws, as corner.py draws them: a 2-D
//! histogram, lightly smoothed, the density levels that enclose given
//! fractions of the draws, and contour lines by marching squares
//! (plotters has none).

use std::collections::HashMap;

/// The mass fractions inside corner.py's default 0.5, 1, 1.5 and 2 sigma
/// contours of a 2-D Gaussian: 1 - exp(-s^2 / 2).
pub fn sigma_levels() -> [f64; 4] {
    [0.5f64, 1.0, 1.5, 2.0].map(|s| 1.0 - (-0.5 * s * s).exp())
}

/// Values on a regular lattice of bin centres: `values[j * nx + i]` at
/// `(x[i], y[j])`.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid2 {
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    pub values: Vec<f64>,
}

impl Grid2 {
    pub fn nx(&self) -> usize {
        self.x.len()
    }
    pub fn ny(&self) -> usize {
        self.y.len()
    }
    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.values[j * self.nx() + i]
    }
    /// Width of a bin along x and y.
    pub fn bin_width(&self) -> (f64, f64) {
        let step = |v: &[f64]| if v.len() > 1 { v[1] - v[0] } else { 1.0 };
        (step(&self.x), step(&self.y))
    }
}

/// Counts of `(xs[k], ys[k])` in `bins` x `bins` bins over the ranges.
pub fn histogram2d(xs: &[f64], ys: &[f64], xr: (f64, f64), yr: (f64, f64), bins: usize) -> Grid2 {
    let (hx, hy) = ((xr.1 - xr.0) / bins as f64, (yr.1 - yr.0) / bins as f64);
    let mut values = vec![0.0; bins * bins];
    for (&x, &y) in xs.iter().zip(ys) {
        if x >= xr.0 && x < xr.1 && y >= yr.0 && y < yr.1 {
            let i = (((x - xr.0) / hx) as usize).min(bins - 1);
            let j = (((y - yr.0) / hy) as usize).min(bins - 1);
            values[j * bins + i] += 1.0;
        }
    }
    Grid2 {
        x: (0..bins).map(|i| xr.0 + (i as f64 + 0.5) * hx).collect(),
        y: (0..bins).map(|j| yr.0 + (j as f64 + 0.5) * hy).collect(),
        values,
    }
}

/// scipy.ndimage.gaussian_filter(mode="reflect", truncate=4) with the same
/// `sigma` (in bins) along both axes.
pub fn gaussian_smooth(grid: &Grid2, sigma: f64) -> Grid2 {
    if sigma <= 0.0 {
        return grid.clone();
    }
    let radius = (4.0 * sigma + 0.5) as isize;
    let mut kernel: Vec<f64> = (-radius..=radius)
        .map(|k| (-0.5 * (k as f64 / sigma).powi(2)).exp())
        .collect();
    let total: f64 = kernel.iter().sum();
    kernel.iter_mut().for_each(|k| *k /= total);
    // 'reflect': d c b a | a b c d | d c b a.
    let reflect = |k: isize, n: isize| -> usize {
        let period = 2 * n;
        let m = k.rem_euclid(period);
        (if m < n { m } else { period - 1 - m }) as usize
    };
    let (nx, ny) = (grid.nx(), grid.ny());
    let pass = |src: &[f64], along_x: bool| -> Vec<f64> {
        let mut out = vec![0.0; src.len()];
        for j in 0..ny {
            for i in 0..nx {
                let mut acc = 0.0;
                for (o, w) in kernel.iter().enumerate() {
                    let d = o as isize - radius;
                    let (ii, jj) = if along_x {
                        (reflect(i as isize + d, nx as isize), j)
                    } else {
                        (i, reflect(j as isize + d, ny as isize))
                    };
                    acc += w * src[jj * nx + ii];
                }
                out[j * nx + i] = acc;
            }
        }
        out
    };
    let values = pass(&pass(&grid.values, true), false);
    Grid2 {
        values,
        ..grid.clone()
    }
}

/// The density thresholds whose super-level sets hold each fraction of the
/// total (corner.py's rule: the smallest bin value among the highest bins
/// whose cumulative share is at most the fraction). Returned in the order
/// of `fractions`.
pub fn levels_for_mass(grid: &Grid2, fractions: &[f64]) -> Vec<f64> {
    let mut flat = grid.values.clone();
    flat.sort_unstable_by(|a, b| b.total_cmp(a));
    let total: f64 = flat.iter().sum();
    let mut cum = Vec::with_capacity(flat.len());
    let mut acc = 0.0;
    for v in &flat {
        acc += v;
        cum.push(acc / total);
    }
    fractions
        .iter()
        .map(|&f| {
            let n = cum.partition_point(|&c| c <= f);
            if n == 0 { flat[0] } else { flat[n - 1] }
        })
        .collect()
}

/// The same grid with a ring of zeros around it, one bin further out, so
/// that every contour closes (as corner.py pads its histogram).
pub fn pad_with_zeros(grid: &Grid2) -> Grid2 {
    let (hx, hy) = grid.bin_width();
    let (nx, ny) = (grid.nx(), grid.ny());
    let mut x = vec![grid.x[0] - hx];
    x.extend_from_slice(&grid.x);
    x.push(grid.x[nx - 1] + hx);
    let mut y = vec![grid.y[0] - hy];
    y.extend_from_slice(&grid.y);
    y.push(grid.y[ny - 1] + hy);
    let mut values = vec![0.0; (nx + 2) * (ny + 2)];
    for j in 0..ny {
        for i in 0..nx {
            values[(j + 1) * (nx + 2) + i + 1] = grid.at(i, j);
        }
    }
    Grid2 { x, y, values }
}

/// An edge of the lattice: horizontal from node (i, j) to (i + 1, j), or
/// vertical from (i, j) to (i, j + 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Edge {
    H(usize, usize),
    V(usize, usize),
}

/// Contour lines of `grid` at `level` by marching squares, as polylines
/// (closed ones repeat their first point at the end). Saddle cells are
/// resolved by the mean of their four corners.
pub fn contour_lines(grid: &Grid2, level: f64) -> Vec<Vec<(f64, f64)>> {
    let (nx, ny) = (grid.nx(), grid.ny());
    let above = |i: usize, j: usize| grid.at(i, j) >= level;
    let point = |e: Edge| -> (f64, f64) {
        let (a, b, p, q) = match e {
            Edge::H(i, j) => (
                grid.at(i, j),
                grid.at(i + 1, j),
                (grid.x[i], grid.y[j]),
                (grid.x[i + 1], grid.y[j]),
            ),
            Edge::V(i, j) => (
                grid.at(i, j),
                grid.at(i, j + 1),
                (grid.x[i], grid.y[j]),
                (grid.x[i], grid.y[j + 1]),
            ),
        };
        let t = if b != a {
            ((level - a) / (b - a)).clamp(0.0, 1.0)
        } else {
            0.5
        };
        (p.0 + t * (q.0 - p.0), p.1 + t * (q.1 - p.1))
    };
    let mut segments: Vec<(Edge, Edge)> = Vec::new();
    for j in 0..ny.saturating_sub(1) {
        for i in 0..nx.saturating_sub(1) {
            // Corners counter-clockwise from bottom-left: (i,j), (i+1,j),
            // (i+1,j+1), (i,j+1); edges bottom, right, top, left.
            let case = (above(i, j) as u8)
                | (above(i + 1, j) as u8) << 1
                | (above(i + 1, j + 1) as u8) << 2
                | (above(i, j + 1) as u8) << 3;
            let (bottom, right, top, left) =
                (Edge::H(i, j), Edge::V(i + 1, j), Edge::H(i, j + 1), Edge::V(i, j));
            let centre_above = || {
                (grid.at(i, j) + grid.at(i + 1, j) + grid.at(i + 1, j + 1) + grid.at(i, j + 1)) / 4.0 >= level
            };
            match case {
                0 | 15 => {}
                1 | 14 => segments.push((left, bottom)),
                2 | 13 => segments.push((bottom, right)),
                3 | 12 => segments.push((left, right)),
                4 | 11 => segments.push((right, top)),
                6 | 9 => segments.push((bottom, top)),
                7 | 8 => segments.push((left, top)),
                5 => {
                    // Bottom-left and top-right above.
                    if centre_above() {
                        segments.push((left, top));
                        segments.push((bottom, right));
                    } else {
                        segments.push((left, bottom));
                        segments.push((right, top));
                    }
                }
                10 => {
                    if centre_above() {
                        segments.push((left, bottom));
                        segments.push((right, top));
                    } else {
                        segments.push((left, top));
                        segments.push((bottom, right));
                    }
                }
                _ => unreachable!("four corner bits"),
            }
        }
    }
    chain(&segments)
        .into_iter()
        .map(|line| line.into_iter().map(point).collect())
        .collect()
}

/// Joins segments that share an edge into polylines. Each lattice edge
/// belongs to at most two cells, and a cell uses an edge at most once, so
/// every edge point has at most two segments: the result is simple paths
/// and loops.
fn chain(segments: &[(Edge, Edge)]) -> Vec<Vec<Edge>> {
    let mut at: HashMap<Edge, Vec<usize>> = HashMap::new();
    for (k, &(a, b)) in segments.iter().enumerate() {
        at.entry(a).or_default().push(k);
        at.entry(b).or_default().push(k);
    }
    let mut used = vec![false; segments.len()];
    let mut lines = Vec::new();
    let next_from = |e: Edge, used: &[bool]| -> Option<usize> { at[&e].iter().copied().find(|&k| !used[k]) };
    // Open paths first (start at an end point), then the loops left over.
    let mut starts: Vec<Edge> = segments
        .iter()
        .flat_map(|&(a, b)| [a, b])
        .filter(|e| at[e].len() == 1)
        .collect();
    starts.extend(segments.iter().map(|&(a, _)| a));
    for start in starts {
        let Some(first) = next_from(start, &used) else {
            continue;
        };
        let mut line = vec![start];
        let mut k = first;
        let mut cur = start;
        loop {
            used[k] = true;
            let (a, b) = segments[k];
            cur = if a == cur { b } else { a };
            line.push(cur);
            match next_from(cur, &used) {
                Some(n) => k = n,
                None => break,
            }
        }
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    #[test]
    fn sigma_levels_are_corner_defaults() {
        let l = sigma_levels();
        for (got, want) in l.iter().zip([0.1175, 0.3935, 0.6753, 0.8647]) {
            assert!((got - want).abs() < 1e-4, "{got} vs {want}");
        }
    }

    #[test]
    fn smoothing_keeps_mass_and_matches_scipy() {
        // scipy.ndimage.gaussian_filter of a unit spike at (2, 2) in a 5x5
        // grid, sigma 1, mode reflect: centre 0.15915589, neighbour
        // 0.09658632 (values from scipy 1.17.1).
        let mut values = vec![0.0; 25];
        values[12] = 1.0;
        let g = Grid2 {
            x: (0..5).map(f64::from).collect(),
            y: (0..5).map(f64::from).collect(),
            values,
        };
        let s = gaussian_smooth(&g, 1.0);
        assert!((s.values.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((s.at(2, 2) - 0.15915589).abs() < 1e-7, "{}", s.at(2, 2));
        assert!((s.at(3, 2) - 0.09658632).abs() < 1e-7, "{}", s.at(3, 2));
    }

    #[test]
    fn levels_enclose_the_asked_fraction() {
        let g = Grid2 {
            x: (0..4).map(f64::from).collect(),
            y: vec![0.0],
            values: vec![4.0, 3.0, 2.0, 1.0],
        };
        // Cumulative shares 0.4, 0.7, 0.9, 1.0.
        assert_eq!(
            levels_for_mass(&g, &[0.4, 0.75, 0.95, 0.1]),
            vec![4.0, 3.0, 2.0, 4.0]
        );
    }

    #[test]
    fn square_contour_closes_around_a_peak() {
        let mut values = vec![0.0; 9];
        values[4] = 1.0;
        let g = Grid2 {
            x: vec![0.0, 1.0, 2.0],
            y: vec![0.0, 1.0, 2.0],
            values,
        };
        let lines = contour_lines(&g, 0.5);
        assert_eq!(lines.len(), 1);
        let l = &lines[0];
        assert_eq!(l.len(), 5, "a closed diamond: 4 points and the first again");
        assert_eq!(l.first(), l.last());
        for p in &l[..4] {
            let r = (p.0 - 1.0).abs() + (p.1 - 1.0).abs();
            assert!((r - 0.5).abs() < 1e-12, "{p:?}");
        }
    }

    /// The 1-sigma contour (39.3% of the mass) of a 2-D Gaussian is the
    /// ellipse at Mahalanobis distance 1; the drawn one must lie within a
    /// bin of it everywhere.
    #[test]
    fn one_sigma_contour_lies_where_theory_puts_it() {
        for (sx, sy, rho) in [(1.0, 1.0, 0.0), (0.5, 2.0, 0.6)] {
            let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(7);
            let n = 400_000;
            let (mut xs, mut ys) = (Vec::with_capacity(n), Vec::with_capacity(n));
            for _ in 0..n {
                let a: f64 = StandardNormal.sample(&mut rng);
                let b: f64 = StandardNormal.sample(&mut rng);
                xs.push(sx * a);
                ys.push(sy * (rho * a + (1.0f64 - rho * rho).sqrt() * b));
            }
            let bins = 60;
            let (xr, yr) = ((-4.0 * sx, 4.0 * sx), (-4.0 * sy, 4.0 * sy));
            let grid = gaussian_smooth(&histogram2d(&xs, &ys, xr, yr, bins), 1.0);
            let level = levels_for_mass(&grid, &[sigma_levels()[1]])[0];
            let lines = contour_lines(&pad_with_zeros(&grid), level);
            let (hx, hy) = grid.bin_width();
            let bin = hx.hypot(hy);
            let mut n_points = 0;
            for line in &lines {
                for &(x, y) in line {
                    // Mahalanobis distance of (x, y).
                    let (u, v) = (x / sx, y / sy);
                    let d2 = (u * u - 2.0 * rho * u * v + v * v) / (1.0 - rho * rho);
                    let d = d2.sqrt();
                    // Distance to the ellipse along the ray from the centre.
                    let off = x.hypot(y) * (1.0 - 1.0 / d).abs();
                    assert!(
                        off < bin,
                        "({x:.3}, {y:.3}) is {off:.3} from the ellipse, bin {bin:.3}"
                    );
                    n_points += 1;
                }
            }
            assert_eq!(lines.len(), 1, "one closed contour");
            assert!(n_points > 20);
        }
    }
}
