//! Reading a flashed target back against the image: the data chunks by
//! their digests, the holes as zeros (a regular file's hole that is still
//! a hole needs no read). `checks` decides what is read and what each chunk
//! must hold; `judge` decides whether what was read is right.

use super::{
    chunks, digest, fadvise, first_difference, reader, still_hole, ChunkReceiver, FlashError, Map,
    Phase, Progress, Range,
};
use crate::fsutil::io_err;
use camino::Utf8Path;
use rustix::fs::Advice;
use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};

/// What a chunk of the target must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// The image's bytes, known by their digest.
    Digest([u8; 32]),
    /// A hole of the image: zeros.
    Zeros,
}

/// One chunk of the read-back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    pub range: Range,
    pub want: Want,
    /// False for a hole known to read as zeros without reading it.
    pub read: bool,
}

/// The read-back in offset order: every digested chunk, and each hole in
/// chunks, read unless `unwritten_hole` says it is still a hole.
pub fn checks(
    digests: &[(Range, [u8; 32])],
    holes: &[Range],
    mut unwritten_hole: impl FnMut(Range) -> bool,
) -> Vec<Check> {
    let mut work: Vec<Check> = digests
        .iter()
        .map(|(range, d)| Check {
            range: *range,
            want: Want::Digest(*d),
            read: true,
        })
        .collect();
    for h in holes {
        work.extend(chunks(*h).map(|range| Check {
            range,
            want: Want::Zeros,
            read: !unwritten_hole(range),
        }));
    }
    work.sort_by_key(|c| c.range.start);
    work
}

/// Where a read-back happens: the image, its open file, the target.
struct Place<'a> {
    image: &'a Utf8Path,
    src: &'a File,
    target: &'a Utf8Path,
}

impl Place<'_> {
    /// Whether `got`, read back for `c`, is what it must be.
    fn judge(&self, c: &Check, got: &[u8]) -> Result<(), FlashError> {
        match c.want {
            Want::Digest(d) if digest(got) != d => Err(first_difference(
                self.image,
                self.src,
                self.target,
                c.range,
                got,
            )),
            Want::Digest(_) => Ok(()),
            Want::Zeros => match first_nonzero(got) {
                Some(i) => Err(FlashError::Mismatch {
                    image: self.image.to_string(),
                    target: self.target.to_string(),
                    offset: c.range.start + i as u64,
                }),
                None => Ok(()),
            },
        }
    }
}

fn first_nonzero(b: &[u8]) -> Option<usize> {
    b.iter().position(|&x| x != 0)
}

/// A regular-file target must be exactly as long as the image.
fn check_length(dst: &File, target: &Utf8Path, expected: u64) -> Result<(), FlashError> {
    let len = dst.metadata().map_err(io_err(target, "stat"))?.len();
    if len != expected {
        return Err(FlashError::Length {
            target: target.to_string(),
            expected,
            actual: len,
        });
    }
    Ok(())
}

/// The next chunk the reader delivers: `c`, as the reader reads in order.
fn next_chunk(
    from_reader: &ChunkReceiver,
    target: &Utf8Path,
    c: Range,
) -> Result<Vec<u8>, FlashError> {
    let (rc, b) = from_reader
        .recv()
        .map_err(|_| io_err(target, "read back")(std::io::Error::other("reader stopped")))??;
    debug_assert_eq!(rc, c);
    Ok(b)
}

/// Verify `target` against `image`: `digests` for the data chunks still
/// to check (none when the flash read them back already), zeros in holes.
/// `base_done` bytes count as verified already.
#[allow(clippy::too_many_arguments)]
pub(super) fn verify_with(
    image: &Utf8Path,
    src: &File,
    map: &Map,
    digests: &[(Range, [u8; 32])],
    base_done: u64,
    target: &Utf8Path,
    is_file: bool,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), FlashError> {
    let dst = File::open(target).map_err(io_err(target, "open for verification"))?;
    if is_file {
        check_length(&dst, target, map.size)?;
    }
    // Read what the device stored, not the page cache.
    fadvise(&dst, Range::whole(map.size), Advice::DontNeed);
    let holes = map.holes();
    let total = map.mapped() + holes.iter().map(Range::len).sum::<u64>();
    let work = checks(digests, &holes, |c| is_file && still_hole(&dst, c));
    let place = Place { image, src, target };
    let mut done = base_done;
    let mut report = |done| {
        progress(Progress {
            phase: Phase::Verify,
            done,
            total,
        })
    };
    report(done);
    let to_read: Vec<Range> = work.iter().filter(|c| c.read).map(|c| c.range).collect();
    std::thread::scope(|s| {
        let (from_reader, pool) = reader(s, &dst, target, to_read, "read back");
        for c in work {
            if cancel.load(Ordering::Relaxed) {
                return Err(FlashError::VerifyInterrupted {
                    target: target.to_string(),
                    done,
                    total,
                });
            }
            if c.read {
                let b = next_chunk(&from_reader, target, c.range)?;
                place.judge(&c, &b)?;
                let _ = pool.send(b);
            }
            done += c.range.len();
            report(done);
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn r(start: u64, end: u64) -> Range {
        Range { start, end }
    }

    #[test]
    fn checks_are_in_offset_order_and_skip_only_unwritten_holes() {
        let mib = 1 << 20;
        let digests = [(r(8 * mib, 9 * mib), [1u8; 32]), (r(0, mib), [2u8; 32])];
        let holes = [r(mib, 2 * mib), r(4 * mib, 5 * mib)];
        let got = checks(&digests, &holes, |c| c.start == 4 * mib);
        let summary: Vec<(u64, Want, bool)> = got
            .iter()
            .map(|c| (c.range.start, c.want, c.read))
            .collect();
        assert_eq!(
            summary,
            [
                (0, Want::Digest([2; 32]), true),
                (mib, Want::Zeros, true),
                (4 * mib, Want::Zeros, false),
                (8 * mib, Want::Digest([1; 32]), true),
            ]
        );
    }

    #[test]
    fn a_hole_reading_nonzero_names_its_first_nonzero_byte() {
        let dir = tempfile::tempdir().unwrap();
        let image = Utf8Path::from_path(dir.path()).unwrap().join("img");
        std::fs::write(&image, [0u8; 8]).unwrap();
        let src = File::open(&image).unwrap();
        let place = Place {
            image: &image,
            src: &src,
            target: Utf8Path::new("/dev/target"),
        };
        let hole = Check {
            range: r(100, 108),
            want: Want::Zeros,
            read: true,
        };
        assert!(place.judge(&hole, &[0; 8]).is_ok());
        match place.judge(&hole, &[0, 0, 0, 7, 0, 1, 0, 0]) {
            Err(FlashError::Mismatch { offset, .. }) => assert_eq!(offset, 103),
            other => panic!("{other:?}"),
        }
        let data = Check {
            range: r(0, 8),
            want: Want::Digest(digest(&[0; 8])),
            read: true,
        };
        assert!(place.judge(&data, &[0; 8]).is_ok());
        match place.judge(&data, &[0, 0, 5, 0, 0, 0, 0, 0]) {
            Err(FlashError::Mismatch { offset, .. }) => assert_eq!(offset, 2),
            other => panic!("{other:?}"),
        }
    }
}
