//! NumPy's `.npy` and `.npz` formats (format versions 1 to 3), read and
//! written here rather than through a crate that parses the header as a
//! general Python literal (that parser alone compiled ~20 crates, a C build
//! step among them, into every build). The header is a Python dict with
//! three keys, `descr`, `fortran_order` and `shape`, which is all this
//! reads. Supported dtypes: float64, float32, int64, int32, either byte
//! order. An `.npz` is a zip archive of `.npy` files, stored or deflated.

use std::io::{Read, Seek, Write};

/// An array's values as stored, widened to one of four element types.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyValues {
    F64(Vec<f64>),
    F32(Vec<f32>),
    I64(Vec<i64>),
    I32(Vec<i32>),
}

/// One array: its shape, its element order, its dtype string and values.
#[derive(Debug, Clone, PartialEq)]
pub struct Npy {
    pub shape: Vec<usize>,
    /// Values in Fortran (column-major) order rather than C order.
    pub fortran_order: bool,
    /// NumPy's dtype string, e.g. `<f8`.
    pub descr: String,
    pub values: NpyValues,
}

/// Why an array could not be read.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyError {
    /// A well-formed file whose dtype popinf does not read (the descr).
    Dtype(String),
    /// Not a readable .npy file (what is wrong).
    Format(String),
}

impl std::fmt::Display for NpyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NpyError::Dtype(d) => write!(f, "unsupported dtype {d}"),
            NpyError::Format(m) => f.write_str(m),
        }
    }
}

const MAGIC: &[u8] = b"\x93NUMPY";

/// The value of `key` in the header dict: the text after `'key':` up to
/// the value's end (a quoted string, a parenthesised tuple, or a word).
fn header_value<'h>(header: &'h str, key: &str) -> Result<&'h str, NpyError> {
    let missing = || NpyError::Format(format!("the .npy header has no '{key}': {header}"));
    let at = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))
        .ok_or_else(missing)?;
    let rest = header[at + key.len() + 2..].trim_start();
    let rest = rest.strip_prefix(':').ok_or_else(missing)?.trim_start();
    let end = match rest.chars().next() {
        Some(q @ ('\'' | '"')) => rest[1..].find(q).map(|i| i + 2),
        Some('(') => rest.find(')').map(|i| i + 1),
        Some(_) => rest.find([',', '}']),
        None => None,
    }
    .ok_or_else(missing)?;
    Ok(rest[..end].trim())
}

fn parse_header(header: &str) -> Result<(String, bool, Vec<usize>), NpyError> {
    let descr = header_value(header, "descr")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"').to_string();
    let fortran_order = match header_value(header, "fortran_order")? {
        "True" => true,
        "False" => false,
        other => {
            return Err(NpyError::Format(format!(
                "fortran_order is '{other}', not True or False"
            )));
        }
    };
    let shape_text = header_value(header, "shape")?;
    let inner = shape_text
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| NpyError::Format(format!("shape '{shape_text}' is not a tuple")))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| NpyError::Format(format!("shape '{shape_text}' is not a tuple of sizes")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((descr, fortran_order, shape))
}

/// Reads `n` values of `size` bytes from `reader`, a block at a time (the
/// raw bytes are never held whole beside the values: a catalog's .npy can
/// be most of memory).
fn read_values<T>(
    reader: &mut impl Read,
    n: usize,
    decode: impl Fn(&[u8]) -> T,
    size: usize,
) -> Result<Vec<T>, NpyError> {
    const BLOCK: usize = 1 << 16;
    let mut out = Vec::with_capacity(n);
    let mut buf = vec![0u8; BLOCK * size];
    while out.len() < n {
        let m = (n - out.len()).min(BLOCK);
        reader.read_exact(&mut buf[..m * size]).map_err(|e| {
            NpyError::Format(format!(
                "the .npy data is cut short ({} of {n} values read): {e}",
                out.len()
            ))
        })?;
        out.extend(buf[..m * size].chunks_exact(size).map(&decode));
    }
    Ok(out)
}

macro_rules! values {
    ($reader:expr, $n:expr, $ty:ty, $big:expr) => {
        read_values(
            $reader,
            $n,
            |b| {
                let b = b.try_into().expect("chunks of the element size");
                if $big {
                    <$ty>::from_be_bytes(b)
                } else {
                    <$ty>::from_le_bytes(b)
                }
            },
            std::mem::size_of::<$ty>(),
        )?
    };
}

impl Npy {
    /// Reads one `.npy` array from a stream.
    pub fn read(mut reader: impl Read) -> Result<Npy, NpyError> {
        let cut = |what: &str| NpyError::Format(format!("not an .npy file ({what})"));
        let mut lead = [0u8; 8];
        reader.read_exact(&mut lead).map_err(|_| cut("too short"))?;
        if &lead[..6] != MAGIC {
            return Err(cut("no \\x93NUMPY magic"));
        }
        let header_len = match lead[6] {
            1 => {
                let mut l = [0u8; 2];
                reader.read_exact(&mut l).map_err(|_| cut("too short"))?;
                u16::from_le_bytes(l) as usize
            }
            2 | 3 => {
                let mut l = [0u8; 4];
                reader.read_exact(&mut l).map_err(|_| cut("too short"))?;
                u32::from_le_bytes(l) as usize
            }
            v => return Err(NpyError::Format(format!("unsupported .npy format version {v}"))),
        };
        let mut header = vec![0u8; header_len];
        reader
            .read_exact(&mut header)
            .map_err(|_| NpyError::Format("the .npy header is cut short".into()))?;
        let header = std::str::from_utf8(&header)
            .map_err(|_| NpyError::Format("the .npy header is not text".into()))?;
        let (descr, fortran_order, shape) = parse_header(header)?;
        let n: usize = shape.iter().product();
        let (order, kind) = descr.split_at(descr.len().min(1));
        let big = match order {
            "<" | "|" | "=" => false,
            ">" => true,
            _ => return Err(NpyError::Dtype(descr)),
        };
        let r = &mut reader;
        let values = match kind {
            "f8" => NpyValues::F64(values!(r, n, f64, big)),
            "f4" => NpyValues::F32(values!(r, n, f32, big)),
            "i8" => NpyValues::I64(values!(r, n, i64, big)),
            "i4" => NpyValues::I32(values!(r, n, i32, big)),
            _ => return Err(NpyError::Dtype(descr)),
        };
        Ok(Npy {
            shape,
            fortran_order,
            descr,
            values,
        })
    }

    /// Float values (float32 widened) in C order; `Dtype` for integers.
    pub fn into_f64_c_order(self) -> Result<(Vec<usize>, Vec<f64>), NpyError> {
        let values = match self.values {
            NpyValues::F64(v) => v,
            NpyValues::F32(v) => v.into_iter().map(f64::from).collect(),
            _ => return Err(NpyError::Dtype(self.descr)),
        };
        let values = if self.fortran_order && self.shape.len() > 1 {
            fortran_to_c(&self.shape, &values)
        } else {
            values
        };
        Ok((self.shape, values))
    }

    /// Integer values (int32 widened), in storage order (for 1-D arrays).
    pub fn into_integers(self) -> Result<Vec<i64>, NpyError> {
        match self.values {
            NpyValues::I64(v) => Ok(v),
            NpyValues::I32(v) => Ok(v.into_iter().map(i64::from).collect()),
            _ => Err(NpyError::Dtype(self.descr)),
        }
    }
}

/// The C-order copy of Fortran-order `values` of `shape`.
fn fortran_to_c(shape: &[usize], values: &[f64]) -> Vec<f64> {
    let n = values.len();
    let mut out = vec![0.0; n];
    // Fortran strides: 1, s0, s0 s1, ...; walk the C-order index.
    let mut strides = vec![1usize; shape.len()];
    for k in 1..shape.len() {
        strides[k] = strides[k - 1] * shape[k - 1];
    }
    let mut index = vec![0usize; shape.len()];
    for o in out.iter_mut() {
        *o = values[index.iter().zip(&strides).map(|(i, s)| i * s).sum::<usize>()];
        for k in (0..shape.len()).rev() {
            index[k] += 1;
            if index[k] < shape[k] {
                break;
            }
            index[k] = 0;
        }
    }
    out
}

/// Values a `.npy` file can be written from (C order).
pub enum NpyData<'a> {
    F64(&'a [f64]),
    I64(&'a [i64]),
}

/// The bytes of a format-1.0 `.npy` file of `shape` in C order, its header
/// padded to 64 bytes as NumPy writes it.
pub fn npy_bytes(shape: &[usize], data: NpyData<'_>) -> Vec<u8> {
    let (descr, n, payload): (&str, usize, Vec<u8>) = match data {
        NpyData::F64(v) => ("<f8", v.len(), v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        NpyData::I64(v) => ("<i8", v.len(), v.iter().flat_map(|x| x.to_le_bytes()).collect()),
    };
    assert_eq!(
        n,
        shape.iter().product::<usize>(),
        "npy_bytes: data and shape disagree"
    );
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    let used = MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat(used.next_multiple_of(64) - used));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Reads arrays by name from an `.npz` archive.
pub struct NpzReader<R: Read + Seek> {
    archive: zip::ZipArchive<R>,
}

impl<R: Read + Seek> NpzReader<R> {
    pub fn new(reader: R) -> Result<Self, NpyError> {
        zip::ZipArchive::new(reader)
            .map(|archive| NpzReader { archive })
            .map_err(|e| NpyError::Format(format!("not a readable .npz (zip) file: {e}")))
    }

    /// The arrays' names (without `.npy`).
    pub fn names(&self) -> Vec<String> {
        self.archive
            .file_names()
            .map(|n| n.strip_suffix(".npy").unwrap_or(n).to_string())
            .collect()
    }

    /// The array called `name` (stored as `name.npy` or `name`), if any.
    pub fn by_name(&mut self, name: &str) -> Result<Option<Npy>, NpyError> {
        let stored = [format!("{name}.npy"), name.to_string()]
            .into_iter()
            .find(|n| self.archive.file_names().any(|f| f == n));
        let Some(stored) = stored else {
            return Ok(None);
        };
        let file = self
            .archive
            .by_name(&stored)
            .map_err(|e| NpyError::Format(format!("cannot open '{stored}' in the archive: {e}")))?;
        Npy::read(file).map(Some)
    }
}

/// Writes arrays into an `.npz` archive in memory (deflated, as
/// `numpy.savez_compressed` does).
pub struct NpzWriter {
    zip: zip::ZipWriter<std::io::Cursor<Vec<u8>>>,
}

impl Default for NpzWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl NpzWriter {
    pub fn new() -> Self {
        NpzWriter {
            zip: zip::ZipWriter::new(std::io::Cursor::new(Vec::new())),
        }
    }

    /// Adds the array `name` of `shape` (C order).
    pub fn add(&mut self, name: &str, shape: &[usize], data: NpyData<'_>) -> std::io::Result<()> {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true);
        self.zip.start_file(format!("{name}.npy"), options)?;
        self.zip.write_all(&npy_bytes(shape, data))
    }

    /// The archive's bytes.
    pub fn finish(self) -> std::io::Result<Vec<u8>> {
        Ok(self.zip.finish()?.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_fortran_order() {
        let data = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let bytes = npy_bytes(&[2, 3], NpyData::F64(&data));
        // NumPy pads the header so the data starts on a 64-byte boundary.
        let header_end = 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!(header_end % 64, 0);
        let a = Npy::read(&bytes[..]).unwrap();
        assert_eq!((a.shape.clone(), a.fortran_order), (vec![2, 3], false));
        assert_eq!(a.into_f64_c_order().unwrap().1, data);
        // The same matrix stored column by column.
        let f = Npy {
            shape: vec![2, 3],
            fortran_order: true,
            descr: "<f8".into(),
            values: NpyValues::F64(vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]),
        };
        assert_eq!(f.into_f64_c_order().unwrap().1, data);
    }

    #[test]
    fn headers_numpy_writes_parse() {
        for (header, shape) in [
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }",
                vec![3, 4],
            ),
            (
                "{'descr': '>f4', 'fortran_order': True, 'shape': (5,), }",
                vec![5],
            ),
            ("{'descr': '<i8', 'fortran_order': False, 'shape': (), }", vec![]),
        ] {
            assert_eq!(parse_header(header).unwrap().2, shape, "{header}");
        }
        let big = {
            let mut b = npy_bytes(&[1], NpyData::F64(&[0.0]));
            b.truncate(b.len() - 8);
            let header = String::from_utf8(b[10..].to_vec()).unwrap().replace("<f8", ">f8");
            let mut out = b[..10].to_vec();
            out.extend_from_slice(header.as_bytes());
            out.extend_from_slice(&2.5f64.to_be_bytes());
            out
        };
        assert_eq!(Npy::read(&big[..]).unwrap().values, NpyValues::F64(vec![2.5]));
        let mut text = npy_bytes(&[1], NpyData::F64(&[0.0]));
        let at = text.windows(3).position(|w| w == b"<f8").unwrap();
        text[at..at + 3].copy_from_slice(b"<U3");
        assert_eq!(Npy::read(&text[..]), Err(NpyError::Dtype("<U3".into())));
        assert!(matches!(
            Npy::read(&b"not numpy at all"[..]),
            Err(NpyError::Format(_))
        ));
        let mut short = npy_bytes(&[3], NpyData::F64(&[1.0, 2.0, 3.0]));
        short.truncate(short.len() - 4);
        let err = Npy::read(&short[..]).unwrap_err().to_string();
        assert!(err.contains("cut short (0 of 3 values read)"), "{err}");
    }

    #[test]
    fn npz_round_trip() {
        let mut w = NpzWriter::new();
        w.add("samples", &[2, 2], NpyData::F64(&[1.0, 2.0, 3.0, 4.0]))
            .unwrap();
        w.add("counts", &[2], NpyData::I64(&[1, 3])).unwrap();
        let bytes = w.finish().unwrap();
        let mut r = NpzReader::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(r.names(), ["samples", "counts"]);
        let s = r.by_name("samples").unwrap().unwrap();
        assert_eq!(
            s.into_f64_c_order().unwrap(),
            (vec![2, 2], vec![1.0, 2.0, 3.0, 4.0])
        );
        assert_eq!(
            r.by_name("counts").unwrap().unwrap().into_integers().unwrap(),
            [1, 3]
        );
        assert_eq!(r.by_name("ln_prior").unwrap(), None);
    }
}
