//! `cargo bench -p popinf`: the importance-sampled likelihood (fused
//! kernel, float64 and float32 storage; the general kernel for comparison)
//! and the bare vectorised exp, at 1e3 to 1e5 objects x 100 samples.
//! `popinf bench likelihood --scaling` covers 1e6 and the memory reference.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use popinf::data::simulate::{ToySettings, simulate_gaussian_toy};
use popinf::likelihood::fused::{SampleStorage, exp_reference_sum};
use popinf::likelihood::importance::{HyperLikelihood, ImportanceLikelihood};
use popinf::model::gaussian::Gaussian;

fn likelihood(c: &mut Criterion) {
    let mut group = c.benchmark_group("ln_likelihood_grad");
    group.sample_size(20);
    for n_obj in [1_000, 10_000, 100_000] {
        let toy = simulate_gaussian_toy(&ToySettings {
            n_obj,
            n_samp: 100,
            ..ToySettings::default()
        })
        .expect("valid toy settings");
        let cat = &toy.catalog;
        group.throughput(Throughput::Elements(cat.total_samples() as u64));
        let theta = [0.05, 0.97];
        let variants = [
            ("fused-f64", SampleStorage::F64, false),
            ("fused-f32", SampleStorage::F32, false),
            ("general", SampleStorage::F64, true),
        ];
        for (name, storage, general) in variants {
            let mut like = ImportanceLikelihood::new(cat, Gaussian)
                .and_then(|l| l.with_storage(storage))
                .expect("the gaussian model takes either storage");
            if general {
                like = like.without_fused_kernel();
            }
            group.bench_with_input(BenchmarkId::new(name, n_obj), &theta, |b, theta| {
                let mut g = [0.0; 2];
                b.iter(|| like.ln_likelihood_grad(std::hint::black_box(theta), &mut g))
            });
        }
    }
    group.finish();
}

fn bare_exp(c: &mut Criterion) {
    let buf: Vec<f64> = (0..4096).map(|i| -30.0 * (i as f64 + 0.5) / 4096.0).collect();
    let mut group = c.benchmark_group("exp");
    group.throughput(Throughput::Elements(buf.len() as u64));
    group.bench_function("kernel_exp_4096", |b| {
        b.iter(|| exp_reference_sum(std::hint::black_box(&buf)))
    });
    group.finish();
}

criterion_group!(benches, likelihood, bare_exp);
criterion_main!(benches);
