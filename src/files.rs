//! Reading the files a user names, bounded: only regular files, never more
//! bytes than a cap (or than a safetensors header promises), so that
//! `/dev/zero`, a FIFO or a huge sparse file is an error, not a runaway.
//!
//! Safetensors headers are checked by hand rather than with the
//! `safetensors` crate (already a dependency of tch): its
//! `SafeTensors::read_metadata` needs the whole file in memory before it
//! checks anything, and its errors name neither the tensor nor the field.
//! Here the 8-byte length and the JSON header are read and checked first
//! (length within the file and under [`MAX_HEADER`]; every tensor's dtype,
//! shape and `data_offsets` consistent and inside the file), and a tensor's
//! bytes are read only when asked for, exactly as many as the header says.

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// Largest safetensors JSON header accepted (the format's own limit).
pub const MAX_HEADER: u64 = 100_000_000;

/// Opens `path` for reading if it is a regular file (symlinks followed) of at
/// most `cap` bytes; returns the file and its size. `what` names the file in
/// errors ("params file", "NDS file", ...).
pub fn open_regular(path: &Path, what: &str, cap: u64) -> Result<(File, u64)> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {what} {}", path.display()))?;
    if !meta.is_file() {
        bail!("cannot read {what} {}: not a regular file", path.display());
    }
    if meta.len() > cap {
        bail!("cannot read {what} {}: {} bytes is more than the limit of {cap} bytes", path.display(), meta.len());
    }
    let file = File::open(path).with_context(|| format!("cannot read {what} {}", path.display()))?;
    Ok((file, meta.len()))
}

/// Reads a regular file of at most `cap` bytes (never more, even if it grows).
pub fn read_capped(path: &Path, what: &str, cap: u64) -> Result<Vec<u8>> {
    let (file, len) = open_regular(path, what, cap)?;
    let mut buf = Vec::with_capacity(len as usize);
    file.take(cap.saturating_add(1))
        .read_to_end(&mut buf)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    if buf.len() as u64 > cap {
        bail!("cannot read {what} {}: more than the limit of {cap} bytes", path.display());
    }
    Ok(buf)
}

/// [`read_capped`] as UTF-8 text.
pub fn read_text_capped(path: &Path, what: &str, cap: u64) -> Result<String> {
    let bytes = read_capped(path, what, cap)?;
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!("cannot read {what} {}: not UTF-8 text (byte {})", path.display(), e.utf8_error().valid_up_to())
    })
}

/// One tensor of a safetensors header.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// Its name.
    pub name: String,
    /// Its dtype as the file spells it (`F32`, `F64`, `I64`, ...).
    pub dtype: String,
    /// Its shape.
    pub shape: Vec<i64>,
    /// Byte range in the data section.
    pub start: u64,
    /// End of the byte range (exclusive).
    pub end: u64,
}

impl TensorInfo {
    /// Elements.
    pub fn numel(&self) -> u64 {
        self.shape.iter().map(|d| *d as u64).product()
    }
}

/// Bytes per element of a safetensors dtype, and its tch kind when rbflex
/// can read it.
fn dtype_info(dtype: &str) -> Option<(u64, Option<Kind>)> {
    Some(match dtype {
        "F64" => (8, Some(Kind::Double)),
        "F32" => (4, Some(Kind::Float)),
        "F16" => (2, Some(Kind::Half)),
        "BF16" => (2, Some(Kind::BFloat16)),
        "I64" => (8, Some(Kind::Int64)),
        "I32" => (4, Some(Kind::Int)),
        "I16" => (2, Some(Kind::Int16)),
        "I8" => (1, Some(Kind::Int8)),
        "U8" => (1, Some(Kind::Uint8)),
        "BOOL" => (1, Some(Kind::Bool)),
        "U64" | "U32" | "U16" => (dtype[1..].parse::<u64>().ok()? / 8, None),
        "F8_E4M3" | "F8_E5M2" => (1, None),
        _ => return None,
    })
}

/// A safetensors file whose header has been read and checked; tensors are
/// read on demand.
#[derive(Debug)]
pub struct SafetensorsFile {
    path: PathBuf,
    what: String,
    file: File,
    data_start: u64,
    /// The tensors, in data order.
    pub tensors: Vec<TensorInfo>,
}

impl SafetensorsFile {
    /// Opens and checks `path` (see the module docs); `what` names it in
    /// errors ("params file", "input file").
    pub fn open(path: &Path, what: &str) -> Result<SafetensorsFile> {
        let (mut file, size) = open_regular(path, what, u64::MAX)?;
        let bad = |why: String| anyhow::anyhow!("cannot read {what} {}: {why}", path.display());
        if size < 8 {
            return Err(bad(format!("{size} bytes is too short for a safetensors file (truncated?)")));
        }
        let mut len = [0u8; 8];
        file.read_exact(&mut len).map_err(|e| bad(e.to_string()))?;
        let n = u64::from_le_bytes(len);
        if n > MAX_HEADER || n > size - 8 {
            return Err(bad(format!(
                "the header length {n} is more than the file's {} remaining bytes or the limit of {MAX_HEADER} \
                 (not a safetensors file, or truncated?)",
                size - 8
            )));
        }
        let mut header = Vec::with_capacity(n as usize);
        (&mut file).take(n).read_to_end(&mut header).map_err(|e| bad(e.to_string()))?;
        let text = std::str::from_utf8(&header).map_err(|_| bad("the header is not UTF-8 JSON".into()))?;
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(format!("the header is not valid JSON {}", json_error(&e))))?;
        let obj = json.as_object().ok_or_else(|| bad("the header is not a JSON object".into()))?;
        let data_len = size - 8 - n;
        let mut tensors = Vec::new();
        for (name, v) in obj {
            if name == "__metadata__" {
                continue;
            }
            let shown = crate::shown::shorten(name);
            let tbad = |why: String| bad(format!("tensor '{shown}': {why}"));
            let dtype =
                v.get("dtype").and_then(|d| d.as_str()).ok_or_else(|| tbad("no string field 'dtype'".into()))?;
            let (elem, _) =
                dtype_info(dtype).ok_or_else(|| tbad(format!("unknown dtype '{}'", crate::shown::shorten(dtype))))?;
            let shape: Vec<i64> = v
                .get("shape")
                .and_then(|s| s.as_array())
                .and_then(|a| {
                    a.iter().map(|d| d.as_u64().filter(|d| *d <= i64::MAX as u64).map(|d| d as i64)).collect()
                })
                .ok_or_else(|| tbad("'shape' is not a list of non-negative integers".into()))?;
            let offsets: Vec<u64> = v
                .get("data_offsets")
                .and_then(|s| s.as_array())
                .and_then(|a| a.iter().map(|d| d.as_u64()).collect())
                .filter(|o: &Vec<u64>| o.len() == 2)
                .ok_or_else(|| tbad("'data_offsets' is not a pair of non-negative integers".into()))?;
            let (start, end) = (offsets[0], offsets[1]);
            let bytes = shape
                .iter()
                .try_fold(elem, |acc, d| acc.checked_mul(*d as u64))
                .ok_or_else(|| tbad(format!("shape {shape:?} is too large")))?;
            if start > end || end > data_len {
                return Err(tbad(format!(
                    "data_offsets [{start}, {end}] are outside the file's {data_len} data bytes (truncated?)"
                )));
            }
            if end - start != bytes {
                return Err(tbad(format!(
                    "data_offsets [{start}, {end}] hold {} bytes, but {dtype} {shape:?} needs {bytes}",
                    end - start
                )));
            }
            tensors.push(TensorInfo { name: name.clone(), dtype: dtype.to_string(), shape, start, end });
        }
        tensors.sort_by_key(|t| (t.start, t.end));
        for pair in tensors.windows(2) {
            if pair[1].start < pair[0].end {
                return Err(bad(format!(
                    "tensors '{}' and '{}' overlap",
                    crate::shown::shorten(&pair[0].name),
                    crate::shown::shorten(&pair[1].name)
                )));
            }
        }
        Ok(SafetensorsFile { path: path.to_path_buf(), what: what.to_string(), file, data_start: 8 + n, tensors })
    }

    /// The header entry of tensor `name`.
    pub fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Reads tensor `t` (exactly its bytes) as a tensor of its own dtype.
    pub fn read(&mut self, t: &TensorInfo) -> Result<Tensor> {
        let (path, what) = (self.path.display(), &self.what);
        let kind = dtype_info(&t.dtype).and_then(|(_, k)| k).with_context(|| {
            format!("{what} {path}: tensor '{}' has dtype {}, which rbflex cannot read", t.name, t.dtype)
        })?;
        let mut buf = vec![0u8; (t.end - t.start) as usize];
        self.file
            .seek(SeekFrom::Start(self.data_start + t.start))
            .and_then(|_| self.file.read_exact(&mut buf))
            .with_context(|| format!("cannot read {what} {path}: tensor '{}'", t.name))?;
        Tensor::f_from_data_size(&buf, &t.shape, kind).map_err(|e| {
            anyhow::anyhow!("cannot read {what} {path}: tensor '{}': {}", t.name, first_line(&e.to_string()))
        })
    }
}

/// The temporary name `path` is written under before it is renamed into
/// place: `name.tmp.ext` (the extension kept, for writers that read it).
pub fn tmp_path(path: &Path) -> PathBuf {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("out");
    let name = match path.extension().and_then(|e| e.to_str()) {
        Some(ext) => format!(".{stem}.tmp.{ext}"),
        None => format!(".{stem}.tmp"),
    };
    path.with_file_name(name)
}

/// Writes `text` to `path` through a temporary file renamed into place, so
/// that a crash or a full disk never leaves a half-written file. Neither
/// the temporary file nor `path` is followed if it is a symbolic link (the
/// rename replaces a link at `path` by the file): what rbflex writes stays
/// inside the folder it writes to.
pub fn write_atomic(path: &Path, text: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    let _ = std::fs::remove_file(&tmp); // a stale one (or a planted link) goes; the link's target is untouched
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .and_then(|mut f| f.write_all(text).and_then(|_| f.sync_all()))
        .and_then(|_| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp); // nothing half-written stays behind
    }
    written.with_context(|| format!("cannot write {}", path.display()))
}

/// Refuses a results folder `out` inside the inputs `input` (given as
/// `option`), or inputs inside it: the run's reports would become inputs.
/// Paths compare as absolute paths, through the symbolic links that exist.
pub fn check_apart(out: &Path, input: &Path, option: &str) -> Result<()> {
    let abs = |p: &Path| -> PathBuf {
        // the longest existing ancestor resolved, the rest appended
        let p = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let mut head = p.clone();
        let mut tail = Vec::new();
        while !head.exists() {
            match (head.file_name().map(|n| n.to_owned()), head.parent().map(Path::to_path_buf)) {
                (Some(name), Some(parent)) => {
                    tail.push(name);
                    head = parent;
                }
                _ => break,
            }
        }
        let mut full = head.canonicalize().unwrap_or(head);
        full.extend(tail.iter().rev());
        full
    };
    let (o, i) = (abs(out), abs(input));
    if o.starts_with(&i) {
        bail!(
            "--out {} is inside {option} {}: the run's reports would become its inputs; put the results elsewhere",
            out.display(),
            input.display()
        );
    }
    if i.starts_with(&o) {
        bail!(
            "{option} {} is inside --out {}: the inputs would mix with the run's reports; put the results elsewhere",
            input.display(),
            out.display()
        );
    }
    Ok(())
}

/// Refuses a results folder whose entries `names` include a symbolic link
/// (which could point anywhere): rbflex reads and writes only regular files
/// there.
pub fn refuse_links(dir: &Path, names: &[&str]) -> Result<()> {
    names.iter().try_for_each(|name| refuse_link(&dir.join(name)))
}

/// Refuses `path` when it is a symbolic link (see [`refuse_links`]).
fn refuse_link(path: &Path) -> Result<()> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        bail!(
            "{} is a symbolic link: rbflex reads and writes only regular files inside its results folder; remove the link",
            path.display()
        );
    }
    Ok(())
}

/// Opens `path` inside a results folder for writing (`append`, else
/// read-write without truncation), creating it if absent, never through a
/// symbolic link: a link there (which could point anywhere) is an error
/// naming it.
pub fn open_in_folder(path: &Path, append: bool) -> Result<File> {
    refuse_link(path)?;
    let mut o = std::fs::OpenOptions::new();
    if append {
        o.append(true);
    } else {
        o.read(true).write(true);
    }
    o.create(true).custom_flags(libc::O_NOFOLLOW).open(path).with_context(|| format!("cannot open {}", path.display()))
}

/// A panic's message: libtorch's own first line when tch panicked on a
/// libtorch error (its payload is `...unwrap()... Torch("<message>\n<C++
/// backtrace>")`), else the first line.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let msg = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("unknown failure");
    if let Some((_, torch)) = msg.split_once("Torch(\"") {
        let end = torch.find("\\n").or_else(|| torch.find("\")")).unwrap_or(torch.len());
        return first_line(&torch[..end]).to_string();
    }
    first_line(msg).to_string()
}

/// The first non-blank line of a message (libtorch's carry a C++ backtrace).
pub fn first_line(msg: &str) -> &str {
    msg.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or(msg)
}

/// A serde_json error as "at line L column C: what" ("... (the text ends
/// early: truncated?)" only when the text really ends too soon).
pub fn json_error(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let msg = full.strip_suffix(&suffix).unwrap_or(&full);
    let eof = if e.is_eof() { " (the text ends early: truncated?)" } else { "" };
    format!("at line {} column {}: {msg}{eof}", e.line(), e.column())
}
