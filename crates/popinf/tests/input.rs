//! Reading catalogs that numpy wrote (fixtures from
//! tests/fixtures/inputs/make_input_fixtures.py), CSV files, and with the
//! `fits` / `hdf5` features, files that astropy and h5py wrote
//! (make_fits_hdf5_fixtures.py).

use std::path::PathBuf;

use popinf::data::input::{InterimPriorSpec, read_measurements, read_samples};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/inputs")
        .join(name)
}

fn row0() -> Vec<f64> {
    std::fs::read_to_string(fixture("samples_f64_row0.txt"))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

#[test]
fn reads_numpy_float64_float32_and_fortran_order() {
    let want = row0();
    for name in ["samples_f64.npy", "samples_fortran.npy", "rect.npz"] {
        let cat = read_samples(&fixture(name), &InterimPriorSpec::Flat).unwrap();
        assert_eq!((cat.n_obj(), cat.n_samples(0), cat.dim()), (20, 30, 1), "{name}");
        assert_eq!(
            cat.object(0).values,
            want.as_slice(),
            "{name}: exact float64 values"
        );
        assert_eq!(cat.object(19).values.len(), 30);
    }
    let cat = read_samples(&fixture("samples_f32.npy"), &InterimPriorSpec::Flat).unwrap();
    for (got, want) in cat.object(0).values.iter().zip(&want) {
        assert_eq!(*got, f64::from(*want as f32), "float32 widened exactly");
    }
}

#[test]
fn reads_3d_and_ragged_npz_with_ln_prior() {
    let cat = read_samples(&fixture("samples_3d.npy"), &InterimPriorSpec::Flat).unwrap();
    assert_eq!((cat.n_obj(), cat.n_samples(4), cat.dim()), (5, 7, 2));
    let cat = read_samples(&fixture("ragged.npz"), &InterimPriorSpec::Column).unwrap();
    assert_eq!(cat.n_obj(), 3);
    assert_eq!([cat.n_samples(0), cat.n_samples(1), cat.n_samples(2)], [3, 1, 5]);
    let obj = cat.object(2);
    for j in 0..5 {
        let x = obj.values[j];
        assert!((obj.ln_prior(j) + 0.5 * x * x).abs() < 1e-15);
    }
}

#[test]
fn unsupported_dtype_and_missing_column_are_clear_errors() {
    let err = read_samples(&fixture("samples_int.npy"), &InterimPriorSpec::Flat)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("samples_int.npy") && err.contains("unsupported dtype") && err.contains("float64"),
        "{err}"
    );
    let err = read_samples(&fixture("samples_f64.npy"), &InterimPriorSpec::Column)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no ln_prior column"), "{err}");
    let err = read_samples(&fixture("ragged.npz"), &InterimPriorSpec::Flat)
        .unwrap_err()
        .to_string();
    assert!(err.contains("has an ln_prior column"), "{err}");
}

#[test]
fn named_interim_prior_is_applied_and_checked() {
    let uniform = "uniform(-5, 30)".parse().unwrap();
    let cat = read_samples(&fixture("samples_f64.npy"), &uniform).unwrap();
    assert_eq!(cat.flat_ln_prior(), Some(-(35f64.ln())));
    let narrow = "uniform(-1, 1)".parse().unwrap();
    let err = read_samples(&fixture("samples_f64.npy"), &narrow)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("object 0, sample") && err.contains("outside the interim prior uniform(-1, 1)"),
        "{err}"
    );
    let normal: InterimPriorSpec = "normal(10, 5)".parse().unwrap();
    let cat = read_samples(&fixture("samples_f64.npy"), &normal).unwrap();
    let x = cat.object(3).values[4];
    let want = -0.5 * ((x - 10.0) / 5.0f64).powi(2) - 5f64.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln();
    assert!((cat.object(3).ln_prior(4) - want).abs() < 1e-12);
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("popinf-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn csv_wide_and_long() {
    let wide = temp_file("wide.csv", "1.0,2.0,3.0\n4.0,5.0\n");
    let cat = read_samples(&wide, &InterimPriorSpec::Flat).unwrap();
    assert_eq!((cat.n_obj(), cat.n_samples(0), cat.n_samples(1)), (2, 3, 2));
    let wide_header = temp_file("wide_h.csv", "s0,s1\n1,2\n3,4\n");
    assert_eq!(
        read_samples(&wide_header, &InterimPriorSpec::Flat)
            .unwrap()
            .n_obj(),
        2
    );
    let long = temp_file(
        "long.csv",
        "object,value,ln_prior\ng1,1.0,-1\ng2,5.0,-2\ng1,2.0,-3\n",
    );
    let cat = read_samples(&long, &InterimPriorSpec::Column).unwrap();
    assert_eq!(cat.object(0).values, &[1.0, 2.0]);
    assert_eq!(
        (cat.object(0).ln_prior(1), cat.object(1).ln_prior(0)),
        (-3.0, -2.0)
    );
    let bad = temp_file("bad.csv", "object,value\na,1.0\na,abc\n");
    let err = read_samples(&bad, &InterimPriorSpec::Flat)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bad.csv, line 3, column 'value': 'abc' is not a number"),
        "{err}"
    );
    let nan = temp_file("nan.csv", "1.0,2.0\n3.0,nan\n");
    let err = read_samples(&nan, &InterimPriorSpec::Flat)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("object 1, sample 1: value NaN is not finite"),
        "{err}"
    );
    let empty = temp_file("empty.csv", "");
    assert!(
        read_samples(&empty, &InterimPriorSpec::Flat)
            .unwrap_err()
            .to_string()
            .contains("empty")
    );
}

#[test]
fn measurements_from_csv_and_npy() {
    let m = read_measurements(&fixture("measurements.npy")).unwrap();
    assert_eq!(m.n_obj(), 8);
    assert!(m.sigma().iter().all(|&s| s == 0.5));
    let csv = temp_file("m.csv", "x,sigma\n0.1,1.0\n0.2,2.0\n");
    let m = read_measurements(&csv).unwrap();
    assert_eq!(m.sigma(), &[1.0, 2.0]);
    let bad = temp_file("mbad.csv", "x,sigma\n0.1,1.0\n0.2,-2.0\n");
    let err = read_measurements(&bad).unwrap_err().to_string();
    assert!(
        err.contains("mbad.csv") && err.contains("object 1: sigma = -2"),
        "{err}"
    );
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
