//! The steps of [`super::flash`]: refuse what cannot be flashed
//! ([`refuse`]), lay out the work in offset order ([`work`]), then the
//! threads of a [`Flow`] — the [`Writer`], [`hash`] and the verifier that
//! reads back behind them — and the verdict over what each of them said
//! ([`outcome`]).

use super::{
    chunks, digest, fadvise, first_difference, reader, start_writeback, wait_written, zero_range,
    ChunkReceiver, FlashError, Map, Phase, Progress, Range, CHUNK, IN_FLIGHT,
};
use crate::fsutil::io_err;
use camino::Utf8Path;
use rustix::fs::Advice;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::ScopedJoinHandle;
use std::time::{Duration, Instant};

/// The first bytes of a QCOW2 image.
const QCOW2_MAGIC: &[u8; 4] = b"QFI\xfb";

/// Whether an image starting with `head` is QCOW2.
pub fn is_qcow2(head: &[u8; 4]) -> bool {
    head == QCOW2_MAGIC
}

/// Refuse an image a disk cannot boot (QCOW2), and a target that is the
/// image itself.
pub fn refuse(image: &Utf8Path, src: &File, target: &Utf8Path) -> Result<(), FlashError> {
    let mut head = [0u8; 4];
    if src.read_exact_at(&mut head, 0).is_ok() && is_qcow2(&head) {
        return Err(FlashError::Qcow2 {
            image: image.to_string(),
        });
    }
    if let (Ok(a), Ok(b)) = (src.metadata(), std::fs::metadata(target)) {
        use std::os::unix::fs::MetadataExt;
        if (a.dev(), a.ino()) == (b.dev(), b.ino()) {
            return Err(FlashError::SameFile {
                target: target.to_string(),
            });
        }
    }
    Ok(())
}

/// What a flash writes, in chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Work {
    /// Each chunk and whether it is data (else a hole to zero), in offset
    /// order, so an interrupted flash leaves a clean prefix.
    pub items: Vec<(Range, bool)>,
    /// Bytes of data and holes to zero.
    pub total: u64,
}

impl Work {
    /// The data chunks, in order (what the reader delivers).
    pub fn data_chunks(&self) -> Vec<Range> {
        self.items
            .iter()
            .filter(|(_, d)| *d)
            .map(|(c, _)| *c)
            .collect()
    }
}

/// The work of flashing `map`: its data, and its holes unless the target is
/// a regular file (emptied and extended, so holes read as zeros already).
pub fn work(map: &Map, is_file: bool) -> Work {
    let holes = if is_file { Vec::new() } else { map.holes() };
    let total = map.mapped() + holes.iter().map(Range::len).sum::<u64>();
    let mut items: Vec<(Range, bool)> = map
        .data
        .iter()
        .flat_map(|r| chunks(*r))
        .map(|c| (c, true))
        .collect();
    items.extend(holes.iter().flat_map(|r| chunks(*r)).map(|c| (c, false)));
    items.sort_by_key(|(r, _)| r.start);
    Work { items, total }
}

/// The writing thread's state: what it writes to and how far it got.
pub struct Writer<'a> {
    pub dst: &'a File,
    pub path: &'a Utf8Path,
    pub cancel: &'a AtomicBool,
    /// Set by the verifier when a chunk read back wrong: stop writing.
    pub failed: &'a AtomicBool,
    pub total: u64,
    /// Bytes written or zeroed so far.
    pub done: u64,
    /// Bytes of holes zeroed.
    pub zeroed: u64,
}

impl Writer<'_> {
    /// Write `work`: data chunks as the reader delivers them (each handed
    /// on to be hashed, its writeback started at once), holes zeroed.
    /// `Err(None)`: stopped by Ctrl-C, by the verifier, or a thread gone.
    pub fn write(
        &mut self,
        work: &[(Range, bool)],
        from_reader: &ChunkReceiver,
        to_hash: &mpsc::SyncSender<(Range, Vec<u8>)>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(), Option<FlashError>> {
        let mut zeros = Vec::new();
        for (c, is_data) in work {
            if self.cancel.load(Ordering::Relaxed) || self.failed.load(Ordering::Relaxed) {
                return Err(None);
            }
            if *is_data {
                let (rc, b) = from_reader.recv().map_err(|_| None)?.map_err(Some)?;
                debug_assert_eq!(rc, *c);
                self.dst
                    .write_all_at(&b, c.start)
                    .map_err(|e| Some(io_err(self.path, "write")(e).into()))?;
                start_writeback(self.dst, *c);
                to_hash.send((*c, b)).map_err(|_| None)?;
            } else {
                if zeros.is_empty() {
                    zeros = vec![0u8; CHUNK as usize];
                }
                zero_range(self.dst, self.path, *c, &mut zeros).map_err(Some)?;
                self.zeroed += c.len();
            }
            self.done += c.len();
            progress(Progress {
                phase: Phase::Write,
                done: self.done,
                total: self.total,
            });
        }
        Ok(())
    }
}

/// The hashing thread: the digest of each written chunk goes to the
/// verifier, its buffer back to the reader's pool.
pub fn hash(
    written: mpsc::Receiver<(Range, Vec<u8>)>,
    to_verify: mpsc::Sender<(Range, [u8; 32])>,
    pool: mpsc::Sender<Vec<u8>>,
) {
    for (c, b) in written {
        let _ = to_verify.send((c, digest(&b)));
        let _ = pool.send(b);
    }
}

/// What the writing, hashing and verifying threads of one flash share.
#[derive(Clone, Copy)]
pub struct Flow<'a> {
    pub image: &'a Utf8Path,
    pub src: &'a File,
    /// The target.
    pub path: &'a Utf8Path,
    pub dst: &'a File,
    /// The target opened again for reading, when verifying.
    pub reread: Option<&'a File>,
    pub cancel: &'a AtomicBool,
    /// Bytes of data in the image.
    pub mapped: u64,
}

/// How the write phase of a flash ended.
pub struct Written {
    pub result: Result<(), FlashError>,
    /// Bytes of holes zeroed.
    pub zeroed: u64,
    /// From `start` to the end of the final fsync.
    pub write_secs: f64,
    /// When only the verifier was left (the read-back's time starts here).
    pub verify_start: Instant,
}

impl Flow<'_> {
    /// Write `work` (started at `start`): one thread reads the image, this
    /// one writes (and starts the device's writeback at once), one hashes
    /// what was written, and with verification one reads it back behind.
    pub fn run(&self, work: &Work, start: Instant, progress: &mut dyn FnMut(Progress)) -> Written {
        let verified = AtomicU64::new(0);
        let failed = AtomicBool::new(false);
        let mut writer = Writer {
            dst: self.dst,
            path: self.path,
            cancel: self.cancel,
            failed: &failed,
            total: work.total,
            done: 0,
            zeroed: 0,
        };
        let mut write_secs = 0.0;
        let mut verify_start = Instant::now();
        let result = std::thread::scope(|s| {
            let (from_reader, pool) =
                reader(s, self.src, self.image, work.data_chunks(), "read image");
            let (to_hash, hash_rx) = mpsc::sync_channel::<(Range, Vec<u8>)>(IN_FLIGHT);
            let (to_verify, verify_rx) = mpsc::channel::<(Range, [u8; 32])>();
            let hasher = s.spawn(move || hash(hash_rx, to_verify, pool));
            let verifier = self.reread.map(|reread| {
                let (flow, verified, failed) = (*self, &verified, &failed);
                s.spawn(move || flow.verify(reread, verified, failed, verify_rx))
            });
            let result = writer.write(&work.items, &from_reader, &to_hash, progress);
            drop(from_reader);
            drop(to_hash);
            hasher.join().expect("hasher thread");
            let sync = self
                .dst
                .sync_all()
                .map_err(|e| io_err(self.path, "fsync")(e).into());
            write_secs = start.elapsed().as_secs_f64();
            verify_start = Instant::now();
            let checked = verifier.map(|v| wait_for(v, &verified, self.mapped, progress));
            let at = Reached {
                target: self.path.to_string(),
                done: writer.done,
                total: work.total,
                verified: verified.load(Ordering::Relaxed),
                mapped: self.mapped,
            };
            outcome(
                result,
                checked,
                self.cancel.load(Ordering::Relaxed),
                sync,
                at,
            )
        });
        Written {
            result,
            zeroed: writer.zeroed,
            write_secs,
            verify_start,
        }
    }

    /// The verifying thread: read back each chunk once it is on the device
    /// (`sync_file_range` waits for its writeback; its cached pages are
    /// dropped), against its digest; a failure stops the writer through
    /// `failed`. Batches of what is ready: every chunk of a batch is waited
    /// on, uncached and requested (WILLNEED) before the first is read, so
    /// several reads are in flight at once.
    fn verify(
        self,
        reread: &File,
        verified: &AtomicU64,
        failed: &AtomicBool,
        digests: mpsc::Receiver<(Range, [u8; 32])>,
    ) -> Result<(), FlashError> {
        let mut buf = Vec::with_capacity(CHUNK as usize);
        let mut batch = Vec::with_capacity(IN_FLIGHT * 2);
        while let Ok(first) = digests.recv() {
            batch.clear();
            batch.push(first);
            while batch.len() < IN_FLIGHT * 2 {
                match digests.try_recv() {
                    Ok(x) => batch.push(x),
                    Err(_) => break,
                }
            }
            if self.cancel.load(Ordering::Relaxed) {
                break;
            }
            for (c, _) in &batch {
                wait_written(self.dst, *c);
                fadvise(reread, *c, Advice::DontNeed);
                fadvise(reread, *c, Advice::WillNeed);
            }
            for (c, want) in &batch {
                buf.resize(c.len() as usize, 0);
                if let Err(e) = reread.read_exact_at(&mut buf, c.start) {
                    failed.store(true, Ordering::Relaxed);
                    return Err(io_err(self.path, "read back")(e).into());
                }
                if digest(&buf) != *want {
                    failed.store(true, Ordering::Relaxed);
                    return Err(first_difference(self.image, self.src, self.path, *c, &buf));
                }
                verified.fetch_add(c.len(), Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

/// Wait for the verifier, showing the read-back that is still behind the writer.
pub fn wait_for(
    verifier: ScopedJoinHandle<'_, Result<(), FlashError>>,
    verified: &AtomicU64,
    mapped: u64,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), FlashError> {
    while !verifier.is_finished() {
        progress(Progress {
            phase: Phase::Verify,
            done: verified.load(Ordering::Relaxed),
            total: mapped,
        });
        std::thread::sleep(Duration::from_millis(100));
    }
    verifier.join().expect("verifier thread")
}

/// How far a flash got, for the message of one that stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reached {
    pub target: String,
    /// Bytes written or zeroed, of `total`.
    pub done: u64,
    pub total: u64,
    /// Bytes read back, of `mapped`.
    pub verified: u64,
    pub mapped: u64,
}

/// The verdict of the write phase over what the writer (`written`), the
/// verifier (`checked`, when there is one) and the final fsync (`sync`)
/// said, and whether Ctrl-C came. A mismatch stops the writer too: it is
/// what is reported.
pub fn outcome(
    written: Result<(), Option<FlashError>>,
    checked: Option<Result<(), FlashError>>,
    cancelled: bool,
    sync: Result<(), FlashError>,
    at: Reached,
) -> Result<(), FlashError> {
    match (written, checked) {
        (_, Some(Err(e))) => Err(e),
        (Err(Some(e)), _) => Err(e),
        (Err(None), _) => Err(FlashError::Interrupted {
            target: at.target,
            done: at.done,
            total: at.total,
        }),
        (Ok(()), _) if cancelled => Err(FlashError::VerifyInterrupted {
            target: at.target,
            done: at.verified,
            total: at.mapped,
        }),
        (Ok(()), _) => sync,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> Range {
        Range { start, end }
    }

    #[test]
    fn work_is_data_and_holes_in_offset_order_in_whole_chunks() {
        // Data at 0..4 KiB and from 5 MiB to 9 MiB, in a 10 MiB image.
        let mib = 1 << 20;
        let map = Map {
            size: 10 * mib,
            data: vec![r(0, 4096), r(5 * mib, 9 * mib)],
        };
        let disk = work(&map, false);
        assert_eq!(disk.total, 10 * mib);
        assert_eq!(
            disk.items,
            [
                (r(0, 4096), true),
                (r(4096, 4 * mib), false),
                (r(4 * mib, 5 * mib), false),
                (r(5 * mib, 8 * mib), true),
                (r(8 * mib, 9 * mib), true),
                (r(9 * mib, 10 * mib), false),
            ]
        );
        assert_eq!(
            disk.data_chunks(),
            [r(0, 4096), r(5 * mib, 8 * mib), r(8 * mib, 9 * mib)]
        );
        // A file's holes read as zeros already: only the data is written.
        let file = work(&map, true);
        assert_eq!(file.total, map.mapped());
        assert!(file.items.iter().all(|(_, data)| *data));
    }

    #[test]
    fn qcow2_is_known_by_its_magic() {
        assert!(is_qcow2(b"QFI\xfb"));
        assert!(!is_qcow2(b"\xebX\x90M"));
    }

    fn reached() -> Reached {
        Reached {
            target: "/dev/sdz".into(),
            done: 3,
            total: 9,
            verified: 2,
            mapped: 8,
        }
    }

    fn mismatch() -> FlashError {
        FlashError::Mismatch {
            image: "i".into(),
            target: "/dev/sdz".into(),
            offset: 7,
        }
    }

    #[test]
    fn the_verdict_prefers_a_mismatch_then_the_writers_error() {
        let busy = || FlashError::Busy { path: "p".into() };
        let v = outcome(Err(None), Some(Err(mismatch())), true, Ok(()), reached());
        assert!(matches!(v, Err(FlashError::Mismatch { offset: 7, .. })));
        let v = outcome(Err(Some(busy())), Some(Ok(())), false, Ok(()), reached());
        assert!(matches!(v, Err(FlashError::Busy { .. })));
        let v = outcome(Err(None), None, true, Ok(()), reached());
        assert!(matches!(
            v,
            Err(FlashError::Interrupted {
                done: 3,
                total: 9,
                ..
            })
        ));
    }

    #[test]
    fn a_complete_write_ends_with_its_fsync_unless_verification_was_stopped() {
        let v = outcome(Ok(()), Some(Ok(())), true, Ok(()), reached());
        assert!(matches!(
            v,
            Err(FlashError::VerifyInterrupted {
                done: 2,
                total: 8,
                ..
            })
        ));
        assert!(outcome(Ok(()), None, false, Ok(()), reached()).is_ok());
        let failed_sync = Err(FlashError::Busy { path: "p".into() });
        let v = outcome(Ok(()), Some(Ok(())), false, failed_sync, reached());
        assert!(matches!(v, Err(FlashError::Busy { .. })));
    }
}
