//! What comes in and goes out as files: catalogs of per-object posterior
//! samples or measurements, their readers, file-writing helpers, and the
//! notebook's toy universe that makes a catalog.

pub mod catalog;
pub mod files;
pub mod input;
pub mod npy;
pub mod simulate;
