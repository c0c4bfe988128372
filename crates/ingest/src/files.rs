//! CloudTrail log files on disk: single files or whole trees in the S3
//! delivery layout (`AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/…`).

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use rayon::prelude::*;

use crate::{Detector, DocumentOutcome, SkipReason};

/// The default limit on one document's decompressed size. CloudTrail's own
/// files are a few MB; anything far larger is not a log file we should trust.
pub const DEFAULT_MAX_DOCUMENT: u64 = 128 << 20;

/// Lists the files under `paths` (files as given, directories walked), sorted.
pub fn collect(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        walk(p, &mut out)?;
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            walk(&entry?.path(), out)?;
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

/// Why a file (or S3 object) is not read, judging by its name alone: digest
/// files of the S3 delivery layout, and anything but `.json` / `.json.gz`.
pub fn skip_by_name(path: &str) -> Option<SkipReason> {
    if path.contains("CloudTrail-Digest") {
        return Some(SkipReason::Digest);
    }
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    (!(name.ends_with(".json") || name.ends_with(".json.gz") || name.ends_with(".gz"))).then_some(SkipReason::Extension)
}

/// Reads a document: gunzips when the content is gzip (whatever the name),
/// and stops past `limit` decompressed bytes.
pub fn read_document(mut reader: impl Read, limit: u64) -> Result<Vec<u8>, SkipReason> {
    let mut head = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match reader.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(SkipReason::Io(e.to_string())),
        }
    }
    let chained = std::io::Cursor::new(head[..got].to_vec()).chain(reader);
    let mut buf = Vec::new();
    let read = if head[..got] == [0x1f, 0x8b] {
        MultiGzDecoder::new(chained).take(limit + 1).read_to_end(&mut buf).map_err(|e| SkipReason::Gzip(e.to_string()))
    } else {
        chained.take(limit + 1).read_to_end(&mut buf).map_err(|e| SkipReason::Io(e.to_string()))
    };
    read?;
    if buf.len() as u64 > limit {
        return Err(SkipReason::TooLarge { limit });
    }
    Ok(buf)
}

/// The outcome for one file.
#[derive(Debug, Clone)]
pub struct FileOutcome {
    pub path: PathBuf,
    pub compressed_bytes: u64,
    pub outcome: DocumentOutcome,
}

/// Reads and scans one file.
pub fn scan_file(detector: &Detector, path: &Path, limit: u64) -> FileOutcome {
    let compressed_bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let skip = |reason| FileOutcome {
        path: path.to_path_buf(),
        compressed_bytes,
        outcome: DocumentOutcome { skipped: Some(reason), ..DocumentOutcome::default() },
    };
    if let Some(reason) = skip_by_name(&path.to_string_lossy()) {
        return skip(reason);
    }
    let bytes = match std::fs::File::open(path) {
        Ok(f) => match read_document(std::io::BufReader::new(f), limit) {
            Ok(b) => b,
            Err(reason) => return skip(reason),
        },
        Err(e) => return skip(SkipReason::Io(e.to_string())),
    };
    let outcome = detector.document(&bytes, "cloudtrail-file", &path.display().to_string());
    FileOutcome { path: path.to_path_buf(), compressed_bytes, outcome }
}

/// Scans many files on all cores; results come back in path order.
/// `progress` is called once per finished file (from any thread).
pub fn scan_files(
    detector: &Detector,
    paths: &[PathBuf],
    limit: u64,
    progress: &(dyn Fn(&FileOutcome) + Sync),
) -> Vec<FileOutcome> {
    paths
        .par_iter()
        .map(|p| {
            let out = scan_file(detector, p, limit);
            progress(&out);
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn reads_plain_and_gzip_and_enforces_the_limit() {
        assert_eq!(read_document(&b"{}"[..], 10).unwrap(), b"{}");
        assert_eq!(read_document(&gz(b"{\"a\":1}")[..], 100).unwrap(), b"{\"a\":1}");
        assert_eq!(read_document(&gz(&[b' '; 1000])[..], 100), Err(SkipReason::TooLarge { limit: 100 }));
        let mut truncated = gz(&[b'x'; 5000]);
        truncated.truncate(truncated.len() / 2);
        assert_eq!(read_document(&truncated[..], 1 << 20).unwrap_err().kind(), "gzip");
        assert_eq!(read_document(&b""[..], 10).unwrap(), b"");
    }
}
