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
pub fn read_document(reader: impl Read, limit: u64) -> Result<Vec<u8>, SkipReason> {
    match read_partial(reader, limit) {
        (bytes, None) => Ok(bytes),
        (_, Some(reason)) => Err(reason),
    }
}

/// Reads a document as far as it can be read: a damaged gzip stream gives
/// what decompressed before the damage, a document past `limit` its first
/// `limit` bytes, each with the reason it is not whole. A cut document may
/// still hold the intruder's calls; the detector reads it leniently.
pub fn read_partial(mut reader: impl Read, limit: u64) -> (Vec<u8>, Option<SkipReason>) {
    let mut head = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match reader.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return (Vec::new(), Some(SkipReason::Io(e.to_string()))),
        }
    }
    let chained = std::io::Cursor::new(head[..got].to_vec()).chain(reader);
    let mut buf = Vec::new();
    // On an error, read_to_end has kept what was read before it.
    let damaged = if head[..got] == [0x1f, 0x8b] {
        MultiGzDecoder::new(chained)
            .take(limit + 1)
            .read_to_end(&mut buf)
            .err()
            .map(|e| SkipReason::Gzip(e.to_string()))
    } else {
        chained.take(limit + 1).read_to_end(&mut buf).err().map(|e| SkipReason::Io(e.to_string()))
    };
    if buf.len() as u64 > limit {
        buf.truncate(limit as usize);
        return (buf, Some(SkipReason::TooLarge { limit }));
    }
    (buf, damaged)
}

/// A buffer each thread keeps for the next document.
pub(crate) type Buffer = std::thread::LocalKey<std::cell::RefCell<Vec<u8>>>;

/// Runs `f` with this thread's buffer `key`, empty; afterwards the buffer is
/// emptied again, and given back to the allocator when an unusually large
/// document grew it past 16 MiB.
pub(crate) fn with_buffer<R>(key: &'static Buffer, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    key.with(|cell| {
        let mut buf = cell.borrow_mut();
        buf.clear();
        let out = f(&mut buf);
        buf.clear();
        if buf.capacity() > 16 << 20 {
            *buf = Vec::new();
        }
        out
    })
}

/// The outcome for one file.
#[derive(Debug, Clone)]
pub struct FileOutcome {
    pub path: PathBuf,
    pub compressed_bytes: u64,
    pub outcome: DocumentOutcome,
}

/// Reads and scans one file: opened once, its size read from the file
/// opened.
pub fn scan_file(detector: &Detector, path: &Path, limit: u64) -> FileOutcome {
    let done = |compressed_bytes, outcome| FileOutcome { path: path.to_path_buf(), compressed_bytes, outcome };
    let skip = |compressed_bytes, reason| {
        done(compressed_bytes, DocumentOutcome { skipped: Some(reason), ..DocumentOutcome::default() })
    };
    let size_by_name = || std::fs::metadata(path).map_or(0, |m| m.len());
    if let Some(reason) = skip_by_name(&path.to_string_lossy()) {
        return skip(size_by_name(), reason);
    }
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return skip(size_by_name(), SkipReason::Io(e.to_string())),
    };
    let compressed_bytes = file.metadata().map_or(0, |m| m.len());
    let origin = path.display().to_string();
    // A file of some size is mapped and scanned where the page cache holds
    // it ([`crate::mapped`]) when the scan reads it once; one cut short
    // meanwhile is read again.
    if detector.reads_once() && (crate::mapped::MIN_MAPPED..=limit).contains(&compressed_bytes) {
        let read = |bytes: &[u8]| detector.read_shared(bytes, limit, "cloudtrail-file", &origin);
        if let crate::mapped::Mapped::Read(outcome) = crate::mapped::with_file(&file, compressed_bytes, read) {
            return done(compressed_bytes, outcome);
        }
    }
    // Otherwise a file no larger than the limit is read whole and decoded in
    // one call; a larger one streams, so a huge file never sits in memory.
    // (A mapping leaves the file's position at its start.)
    let outcome = if compressed_bytes <= limit {
        thread_local! {
            static READ: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let read = with_buffer(&READ, |data| {
            file.read_to_end(data).map(|_| detector.read_bytes(data, limit, "cloudtrail-file", &origin))
        });
        match read {
            Ok(outcome) => outcome,
            Err(e) => return skip(compressed_bytes, SkipReason::Io(e.to_string())),
        }
    } else {
        detector.read(std::io::BufReader::new(file), limit, "cloudtrail-file", &origin)
    };
    done(compressed_bytes, outcome)
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
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// `data` gzipped, one member: for the tests of this crate.
    pub(crate) fn gz(data: &[u8]) -> Vec<u8> {
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

    #[test]
    fn a_cut_gzip_file_is_scanned_as_far_as_it_goes() {
        let mut index = crate::index::KeyIndex::new();
        index.insert(crate::index::TokenRef { token_id: 1, retired: false }, "AKIARZPUZDIKAWS2LJNF", None, None);
        let detector = Detector::new(index);
        let hit = r#"{"eventVersion":"1.08","eventID":"e1","eventName":"ListBuckets","userIdentity":{"accessKeyId":"AKIARZPUZDIKAWS2LJNF"}}"#;
        let filler: String =
            (0..2000).map(|n| format!(r#",{{"eventVersion":"1.08","eventID":"f{n}","x":"{n:x}{n:o}"}}"#)).collect();
        let mut cut = gz(format!(r#"{{"Records":[{hit}{filler}]}}"#).as_bytes());
        cut.truncate(cut.len() * 2 / 3);
        let (bytes, damaged) = read_partial(&cut[..], 1 << 20);
        assert_eq!(damaged.unwrap().kind(), "gzip");
        assert!(bytes.starts_with(br#"{"Records":[{"eventVersion""#));
        let out = detector.read(&cut[..], 1 << 20, "test", "cut.json.gz");
        assert_eq!((out.events.len(), out.skipped.map(|r| r.kind())), (1, Some("gzip")));
        let too_large =
            detector.read(&gz(format!(r#"{{"Records":[{hit}{filler}]}}"#).as_bytes())[..], 4096, "test", "x");
        assert_eq!((too_large.events.len(), too_large.skipped.map(|r| r.kind())), (1, Some("too-large")));
    }

    /// Files large enough to be mapped are read as the smaller ones are:
    /// the same events, records and reasons, plain or gzipped, with a hit
    /// (parsed from a copy) or without (classified in place).
    #[test]
    fn mapped_files_read_as_read_ones_do() {
        let mut index = crate::index::KeyIndex::new();
        let minted = Some(("123456789012", "svc-backup"));
        index.insert(crate::index::TokenRef { token_id: 1, retired: false }, "AKIARZPUZDIKAWS2LJNF", None, minted);
        let detector = Detector::new(index);
        assert!(detector.reads_once(), "no decoys: files are mapped");
        let hit = r#"{"eventVersion":"1.08","eventID":"e1","eventName":"ListBuckets","userIdentity":{"accessKeyId":"AKIARZPUZDIKAWS2LJNF","arn":"arn:aws:iam::1:user/\u0061"}}"#;
        // Values that do not compress away, so the gzipped file is mapped too.
        let noise =
            |n: u64| n.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) ^ n.wrapping_mul(0xff51_afd7_ed55_8ccd);
        let filler: String = (0..3000u64)
            .map(|n| {
                format!(r#",{{"eventVersion":"1.08","eventID":"f{n}","x":"{:016x}{:016x}"}}"#, noise(n), noise(!n))
            })
            .collect();
        let with_hit = format!(r#"{{"Records":[{filler}{hit}]}}"#).replacen(",", "", 1);
        let without = format!(r#"{{"Records":[{}]}}"#, &filler[1..]);
        let not_cloudtrail = format!(r#"{{"hello":"{}"}}"#, "w".repeat(100_000));
        let cut = &without[..without.len() - 10];
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("hit.json", with_hit.clone().into_bytes(), (1, 3001, None)),
            ("hit.json.gz", gz(with_hit.as_bytes()), (1, 3001, None)),
            ("none.json", without.clone().into_bytes(), (0, 3000, None)),
            ("other.json", not_cloudtrail.into_bytes(), (0, 0, Some("not-cloudtrail"))),
            ("cut.json", cut.as_bytes().to_vec(), (0, 3000, Some("invalid-json"))),
        ];
        for (name, data, want) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, &data).unwrap();
            assert!(data.len() as u64 >= crate::mapped::MIN_MAPPED, "{name} is mapped");
            let out = scan_file(&detector, &path, DEFAULT_MAX_DOCUMENT).outcome;
            let got = (out.events.len(), out.records, out.skipped.as_ref().map(|r| r.kind()));
            assert_eq!(got, want, "{name}");
            let read = detector.read(&data[..], DEFAULT_MAX_DOCUMENT, "cloudtrail-file", name);
            assert_eq!((read.events.len(), read.records, read.bytes), (out.events.len(), out.records, out.bytes));
        }
    }

    /// The in-memory path (one libdeflate call for one member) finds what
    /// the streaming path finds, and hands it every case it cannot take:
    /// several members, damage, a document past the limit.
    #[test]
    fn documents_in_memory_are_read_as_the_stream_reads_them() {
        let mut index = crate::index::KeyIndex::new();
        index.insert(crate::index::TokenRef { token_id: 1, retired: false }, "AKIARZPUZDIKAWS2LJNF", None, None);
        let detector = Detector::new(index);
        let record = |id: &str| {
            format!(
                r#"{{"eventVersion":"1.08","eventID":"{id}","eventName":"ListBuckets","userIdentity":{{"accessKeyId":"AKIARZPUZDIKAWS2LJNF"}}}}"#
            )
        };
        let doc = |id: &str| format!(r#"{{"Records":[{}]}}"#, record(id)).into_bytes();
        let found = |o: &DocumentOutcome| (o.events.len(), o.skipped.as_ref().map(|r| r.kind()));
        for data in [doc("plain"), gz(&doc("one-member"))] {
            let fast = detector.read_bytes(&data, 1 << 20, "test", "x");
            let stream = detector.read(&data[..], 1 << 20, "test", "x");
            assert_eq!((found(&fast), fast.records), (found(&stream), stream.records));
            assert_eq!(found(&fast), (1, None));
        }
        // Two members (a concatenated file): left to the stream, which
        // decodes both (a one-member decoder would drop the second).
        let two = [gz(&doc("first")), gz(&doc("second"))].concat();
        assert_eq!(crate::gunzip::single_member(&two, 1 << 20), None);
        let stream = detector.read(&two[..], 1 << 20, "test", "x");
        let out = detector.read_bytes(&two, 1 << 20, "test", "x");
        assert_eq!((found(&out), out.records), (found(&stream), stream.records));
        assert!(String::from_utf8_lossy(&read_partial(&two[..], 1 << 20).0).contains("second"));
        // Cut, and past the limit: what decoded is scanned, and the reason given.
        let big = gz(format!(r#"{{"Records":[{}{}]}}"#, record("e1"), ",{\"x\":1}".repeat(5000)).as_bytes());
        let cut = &big[..big.len() * 2 / 3];
        assert_eq!(found(&detector.read_bytes(cut, 1 << 20, "test", "x")), (1, Some("gzip")));
        assert_eq!(found(&detector.read_bytes(&big, 4096, "test", "x")), (1, Some("too-large")));
        assert_eq!(found(&detector.read_bytes(&doc("plain").repeat(3), 10, "test", "x")).1, Some("too-large"));
    }
}
