//! One error type for the library: every message names the thing at fault
//! (file, object, sample, parameter) and the offending value.

use std::path::PathBuf;

/// Errors popinf reports to its caller. The CLI maps every variant to exit
/// code 2 ("bad input") except `Io`, which is an environment problem.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input data or settings that cannot be used as given.
    #[error("{0}")]
    Invalid(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Shorthand for `Err(Error::Invalid(format!(...)))`.
#[macro_export]
macro_rules! invalid {
    ($($arg:tt)*) => {
        ::std::result::Result::Err($crate::error::Error::Invalid(format!($($arg)*)))
    };
}
