//! FITS and HDF5 readers (cargo features `fits`, `hdf5`), on files written
//! by astropy and h5py (tests/fixtures/inputs/make_fits_hdf5_fixtures.py).

use std::path::PathBuf;

#[allow(unused_imports)]
use popinf::input::{InterimPriorSpec, read_samples};

#[allow(dead_code)]
fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/inputs")
        .join(name)
}

#[allow(dead_code)]
fn row0() -> Vec<f64> {
    std::fs::read_to_string(fixture("samples_f64_row0.txt"))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

#[cfg(feature = "fits")]
#[test]
fn reads_fits_wide_and_long_tables() {
    let cat = read_samples(&fixture("wide.fits"), &InterimPriorSpec::Flat).unwrap();
    assert_eq!((cat.n_obj(), cat.n_samples(0)), (20, 30));
    assert_eq!(cat.object(0).values, row0().as_slice());
    let cat = read_samples(&fixture("long.fits"), &InterimPriorSpec::Column).unwrap();
    assert_eq!(cat.n_obj(), 2);
    assert_eq!(cat.object(0).values, &[1.0, 2.0, 3.0]);
    assert_eq!(cat.object(1).values, &[5.0, 6.0]);
    assert_eq!(cat.object(1).ln_prior(1), -18.0);
}

#[cfg(feature = "hdf5")]
#[test]
fn reads_hdf5_rectangular_and_ragged() {
    let cat = read_samples(&fixture("rect.h5"), &InterimPriorSpec::Flat).unwrap();
    assert_eq!((cat.n_obj(), cat.n_samples(0)), (20, 30));
    for (got, want) in cat.object(0).values.iter().zip(row0()) {
        assert_eq!(*got, f64::from(want as f32), "float32 widened exactly");
    }
    let cat = read_samples(&fixture("ragged.h5"), &InterimPriorSpec::Column).unwrap();
    assert_eq!((cat.n_obj(), cat.n_samples(0), cat.n_samples(1)), (2, 1, 3));
    assert_eq!(cat.object(1).ln_prior(2), -4.0);
}

#[cfg(not(any(feature = "fits", feature = "hdf5")))]
#[test]
fn without_the_features_fits_and_hdf5_say_how_to_enable_them() {
    let err = read_samples(&fixture("wide.fits"), &InterimPriorSpec::Flat)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--features fits") && err.contains("libcfitsio-dev"),
        "{err}"
    );
    let err = read_samples(&fixture("rect.h5"), &InterimPriorSpec::Flat)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--features hdf5") && err.contains("libhdf5-dev"),
        "{err}"
    );
}
