//! TensorBoard event files, written (and read back) by hand.
//!
//! An event file is a sequence of TFRecords: a `u64` little-endian data length, the masked
//! CRC-32C of those 8 length bytes (`u32` LE), the data, and the masked CRC-32C of the data
//! (`u32` LE). Each record's data is an `Event` protocol buffer:
//!
//! ```text
//! message Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//! message Summary { repeated Value value = 1; }
//! message Value   { string tag = 1; float simple_value = 2; }
//! ```
//!
//! [`EventWriter`] writes such files (the first event carries `file_version =
//! "brain.Event:2"`, as TensorBoard expects); [`read_scalars`] parses one back, checking both
//! CRCs of every record; [`flatten_metrics`] turns a `metrics.jsonl` line into scalar tags
//! (the names [`crate::report`] and [`crate::compare`] use too).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
pub use crate::read::flatten_metrics;

/// The `file_version` of the first event of every file.
pub const FILE_VERSION: &str = "brain.Event:2";

/// CRC-32C (Castagnoli, reflected polynomial `0x82F63B78`) lookup table.
const CRC32C_TABLE: [u32; 256] = crc32c_table();

const fn crc32c_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

/// CRC-32C (Castagnoli) of `bytes`, as used by TFRecord and iSCSI.
pub fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc = CRC32C_TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// The masked CRC-32C that TFRecord stores: `((crc >> 15) | (crc << 17)) + 0xa282ead8`.
pub fn masked_crc32c(bytes: &[u8]) -> u32 {
    let crc = crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Writes scalars to a TensorBoard event file.
///
/// Records are buffered; call [`EventWriter::flush`] to make them visible to TensorBoard
/// (dropping the writer also flushes, ignoring errors).
#[derive(Debug)]
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventWriter {
    /// Creates `dir` if needed and a new file `dir/events.out.tfevents.<unix secs>.<host>`
    /// in it (with `.1`, `.2`, … appended if that name is taken), and writes the first event
    /// (`file_version = "brain.Event:2"`).
    pub fn create(dir: &Path) -> Result<EventWriter> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let base = format!("events.out.tfevents.{}.{}", now.as_secs(), hostname());
        let mut suffix = 0u32;
        let (path, file) = loop {
            let name = if suffix == 0 {
                base.clone()
            } else {
                format!("{base}.{suffix}")
            };
            let path = dir.join(name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => break (path, file),
                Err(e) if e.kind() == ErrorKind::AlreadyExists && suffix < 10_000 => suffix += 1,
                Err(e) => return Err(Error::io(&path, e)),
            }
        };
        let mut writer = EventWriter {
            path,
            out: BufWriter::new(file),
        };
        let mut event = Vec::new();
        encode_double(&mut event, 1, now.as_secs_f64());
        encode_bytes(&mut event, 3, FILE_VERSION.as_bytes());
        writer.write_record(&event)?;
        writer.flush()?;
        Ok(writer)
    }

    /// The event file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one scalar `value` under `tag` at `step` (`wall_time`: seconds since the Unix
    /// epoch). An empty tag is an error.
    pub fn add_scalar(&mut self, tag: &str, value: f32, step: i64, wall_time: f64) -> Result<()> {
        self.add_scalars(&[(tag.to_string(), value)], step, wall_time)
    }

    /// Writes several scalars in one event (one summary with a value per tag).
    /// Nothing is written for an empty slice; an empty tag is an error.
    pub fn add_scalars(
        &mut self,
        scalars: &[(String, f32)],
        step: i64,
        wall_time: f64,
    ) -> Result<()> {
        if scalars.is_empty() {
            return Ok(());
        }
        let mut summary = Vec::new();
        for (tag, value) in scalars {
            if tag.is_empty() {
                return Err(Error::EmptyTag);
            }
            let mut entry = Vec::new();
            encode_bytes(&mut entry, 1, tag.as_bytes());
            encode_key(&mut entry, 2, WIRE_FIXED32);
            entry.extend_from_slice(&value.to_le_bytes());
            encode_bytes(&mut summary, 1, &entry);
        }
        let mut event = Vec::new();
        encode_double(&mut event, 1, wall_time);
        encode_key(&mut event, 2, WIRE_VARINT);
        encode_varint(&mut event, step as u64);
        encode_bytes(&mut event, 5, &summary);
        self.write_record(&event)
    }

    /// Writes every numeric field of one metrics record (a JSON object such as a line of
    /// `metrics.jsonl`) at `step`, as flattened by [`flatten_metrics`] (so `step` itself is
    /// left out). Returns how many scalars were written. A value that is not a JSON object
    /// is an error.
    pub fn log_metrics(
        &mut self,
        metrics: &serde_json::Value,
        step: i64,
        wall_time: f64,
    ) -> Result<usize> {
        if !metrics.is_object() {
            return Err(Error::MetricsNotAnObject {
                value: truncate(&metrics.to_string(), 80),
            });
        }
        let scalars: Vec<(String, f32)> = flatten_metrics(metrics)
            .into_iter()
            .map(|(tag, value)| (tag, value as f32))
            .collect();
        self.add_scalars(&scalars, step, wall_time)?;
        Ok(scalars.len())
    }

    /// Flushes buffered records to the file.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::io(&self.path, e))
    }

    fn write_record(&mut self, data: &[u8]) -> Result<()> {
        let len = (data.len() as u64).to_le_bytes();
        let mut record = Vec::with_capacity(data.len() + 16);
        record.extend_from_slice(&len);
        record.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
        record.extend_from_slice(data);
        record.extend_from_slice(&masked_crc32c(data).to_le_bytes());
        self.out
            .write_all(&record)
            .map_err(|e| Error::io(&self.path, e))
    }
}

/// Reads the scalars `(tag, step, value)` of an event file, in file order, checking the
/// length and data CRCs of every record. A truncated or corrupt file is an
/// [`Error::CorruptEventFile`] naming the file and the byte offset of the bad record.
pub fn read_scalars(path: &Path) -> Result<Vec<(String, i64, f32)>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bad = |offset: usize, reason: &str| Error::CorruptEventFile {
        path: path.to_path_buf(),
        offset,
        reason: reason.to_string(),
    };
    let mut scalars = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let header = bytes
            .get(pos..pos + 12)
            .ok_or_else(|| bad(pos, "truncated record header"))?;
        let len_bytes = &header[..8];
        let len_crc = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        if masked_crc32c(len_bytes) != len_crc {
            return Err(bad(pos, "the CRC of the record length does not match"));
        }
        let mut len8 = [0u8; 8];
        len8.copy_from_slice(len_bytes);
        let data_start = pos + 12;
        let data_end = usize::try_from(u64::from_le_bytes(len8))
            .ok()
            .and_then(|len| data_start.checked_add(len))
            .filter(|&end| end.checked_add(4).is_some_and(|e| e <= bytes.len()))
            .ok_or_else(|| bad(pos, "the record runs past the end of the file"))?;
        let data = &bytes[data_start..data_end];
        let c = &bytes[data_end..data_end + 4];
        if masked_crc32c(data) != u32::from_le_bytes([c[0], c[1], c[2], c[3]]) {
            return Err(bad(data_start, "the CRC of the record data does not match"));
        }
        parse_event(data, &mut scalars).map_err(|what| bad(data_start, &what))?;
        pos = data_end + 4;
    }
    Ok(scalars)
}

/// Appends the simple-value scalars of one `Event` to `out`.
fn parse_event(data: &[u8], out: &mut Vec<(String, i64, f32)>) -> std::result::Result<(), String> {
    let mut step = 0i64;
    let mut values = Vec::new();
    let mut reader = ProtoReader { data, pos: 0 };
    while let Some((field, wire)) = reader.key()? {
        match (field, wire) {
            (2, WIRE_VARINT) => step = reader.varint()? as i64,
            (5, WIRE_LEN) => {
                let mut summary = ProtoReader {
                    data: reader.bytes()?,
                    pos: 0,
                };
                while let Some((field, wire)) = summary.key()? {
                    if (field, wire) == (1, WIRE_LEN) {
                        if let Some(value) = parse_value(summary.bytes()?)? {
                            values.push(value);
                        }
                    } else {
                        summary.skip(wire)?;
                    }
                }
            }
            _ => reader.skip(wire)?,
        }
    }
    out.extend(values.into_iter().map(|(tag, v)| (tag, step, v)));
    Ok(())
}

/// The `(tag, simple_value)` of a `Summary.Value`, if it has a simple value.
fn parse_value(data: &[u8]) -> std::result::Result<Option<(String, f32)>, String> {
    let mut reader = ProtoReader { data, pos: 0 };
    let mut tag = String::new();
    let mut value = None;
    while let Some((field, wire)) = reader.key()? {
        match (field, wire) {
            (1, WIRE_LEN) => {
                tag = String::from_utf8(reader.bytes()?.to_vec())
                    .map_err(|_| "a summary tag is not UTF-8".to_string())?;
            }
            (2, WIRE_FIXED32) => {
                let b = reader.take(4)?;
                value = Some(f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            }
            _ => reader.skip(wire)?,
        }
    }
    Ok(value.map(|v| (tag, v)))
}

const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_FIXED32: u8 = 5;

fn encode_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn encode_key(out: &mut Vec<u8>, field: u32, wire: u8) {
    encode_varint(out, (u64::from(field) << 3) | u64::from(wire));
}

fn encode_double(out: &mut Vec<u8>, field: u32, v: f64) {
    encode_key(out, field, WIRE_FIXED64);
    out.extend_from_slice(&v.to_le_bytes());
}

fn encode_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    encode_key(out, field, WIRE_LEN);
    encode_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A minimal protocol-buffer wire-format reader.
struct ProtoReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> ProtoReader<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| "a protocol-buffer field runs past the end of its record".to_string())?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn varint(&mut self) -> std::result::Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.take(1)?[0];
            if shift < 64 {
                v |= u64::from(b & 0x7f) << shift;
            }
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("a protocol-buffer varint is longer than 10 bytes".into())
    }

    /// The next field number and wire type, or `None` at the end.
    fn key(&mut self) -> std::result::Result<Option<(u64, u8)>, String> {
        if self.pos >= self.data.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        Ok(Some((key >> 3, (key & 7) as u8)))
    }

    fn bytes(&mut self) -> std::result::Result<&'a [u8], String> {
        let len = usize::try_from(self.varint()?)
            .map_err(|_| "a protocol-buffer length does not fit in memory".to_string())?;
        self.take(len)
    }

    fn skip(&mut self, wire: u8) -> std::result::Result<(), String> {
        match wire {
            WIRE_VARINT => self.varint().map(drop),
            WIRE_FIXED64 => self.take(8).map(drop),
            WIRE_LEN => self.bytes().map(drop),
            WIRE_FIXED32 => self.take(4).map(drop),
            other => Err(format!("unsupported protocol-buffer wire type {other}")),
        }
    }
}

/// This machine's host name, reduced to characters safe in a file name, or `"spar"`.
fn hostname() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_default();
    let name: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    if name.is_empty() {
        "spar".into()
    } else {
        name
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "spar-tensorboard-{name}-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn crc32c_check_values() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn varint_round_trip_including_negative_steps() {
        for v in [0u64, 1, 127, 128, 300, u64::MAX, (-5i64) as u64] {
            let mut buf = Vec::new();
            encode_varint(&mut buf, v);
            let mut reader = ProtoReader { data: &buf, pos: 0 };
            assert_eq!(reader.varint().unwrap(), v);
            assert_eq!(reader.pos, buf.len());
        }
    }

    #[test]
    fn scalars_round_trip() {
        let dir = temp_dir("roundtrip");
        let mut writer = EventWriter::create(&dir).unwrap();
        let name = writer
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(name.starts_with("events.out.tfevents."), "{name}");
        writer.add_scalar("loss", 0.5, 0, 1.0e9).unwrap();
        writer.add_scalar("loss", -1.25, 1, 1.0e9 + 1.0).unwrap();
        writer
            .add_scalar("exploitability", 0.125, -3, 1.0e9 + 2.0)
            .unwrap();
        writer.add_scalar("big", 1.0e30, i64::MAX, 0.0).unwrap();
        assert!(matches!(
            writer.add_scalar("", 1.0, 0, 0.0),
            Err(Error::EmptyTag)
        ));
        writer.flush().unwrap();
        let scalars = read_scalars(writer.path()).unwrap();
        assert_eq!(
            scalars,
            vec![
                ("loss".to_string(), 0, 0.5),
                ("loss".to_string(), 1, -1.25),
                ("exploitability".to_string(), -3, 0.125),
                ("big".to_string(), i64::MAX, 1.0e30),
            ]
        );
        // The first record is the file-version event.
        let bytes = std::fs::read(writer.path()).unwrap();
        let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let data = &bytes[12..12 + len];
        assert!(data
            .windows(FILE_VERSION.len())
            .any(|w| w == FILE_VERSION.as_bytes()));
        // A second writer in the same second gets its own file.
        let other = EventWriter::create(&dir).unwrap();
        assert_ne!(other.path(), writer.path());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn log_metrics_flattens_maps_and_arrays() {
        let dir = temp_dir("metrics");
        let mut writer = EventWriter::create(&dir).unwrap();
        let metrics = serde_json::json!({
            "step": 7,
            "mean_return": {"player0": 0.25, "player1": -0.25},
            "invalid_rate": 0.0,
            "samples": 12,
            "vs_random": [0.5, 0.75],
            "exploitability": null,
            "note": "text",
            "flag": true
        });
        assert_eq!(writer.log_metrics(&metrics, 7, 5.0).unwrap(), 6);
        let err = writer
            .log_metrics(&serde_json::json!([1, 2]), 0, 0.0)
            .unwrap_err();
        assert!(
            matches!(&err, Error::MetricsNotAnObject { value } if value == "[1,2]"),
            "{err:?}"
        );
        writer.flush().unwrap();
        let mut tags: Vec<(String, i64, f32)> = read_scalars(writer.path()).unwrap();
        tags.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            tags,
            vec![
                ("invalid_rate".to_string(), 7, 0.0),
                ("mean_return/player0".to_string(), 7, 0.25),
                ("mean_return/player1".to_string(), 7, -0.25),
                ("samples".to_string(), 7, 12.0),
                ("vs_random/seat0".to_string(), 7, 0.5),
                ("vs_random/seat1".to_string(), 7, 0.75),
            ]
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn corruption_is_detected_with_offset() {
        let dir = temp_dir("corrupt");
        let mut writer = EventWriter::create(&dir).unwrap();
        writer.add_scalar("loss", 0.5, 3, 1.0).unwrap();
        writer.flush().unwrap();
        let path = writer.path().to_path_buf();
        let good = std::fs::read(&path).unwrap();
        let first_len = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
        let second = first_len + 16;

        // A flipped byte in the second record's data.
        let mut bytes = good.clone();
        bytes[second + 14] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let err = read_scalars(&path).unwrap_err();
        assert!(
            matches!(err, Error::CorruptEventFile { offset, .. } if offset == second + 12),
            "{err:?}"
        );
        let err = err.to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(
            err.contains(&format!("byte offset {}", second + 12)),
            "{err}"
        );

        // A flipped byte in the second record's length.
        let mut bytes = good.clone();
        bytes[second] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let err = read_scalars(&path).unwrap_err().to_string();
        assert!(err.contains(&format!("byte offset {second}")), "{err}");

        // A truncated file.
        std::fs::write(&path, &good[..good.len() - 2]).unwrap();
        let err = read_scalars(&path).unwrap_err().to_string();
        assert!(err.contains(&format!("byte offset {second}")), "{err}");

        std::fs::write(&path, &good).unwrap();
        assert_eq!(
            read_scalars(&path).unwrap(),
            vec![("loss".to_string(), 3, 0.5)]
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
