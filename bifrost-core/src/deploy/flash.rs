//! Writing an image onto a device or a file: only the image's mapped ranges
//! (the idea of bmaptool's block map, taken live from `SEEK_DATA`/`SEEK_HOLE`),
//! holes zeroed only where the target may not read as zeros, large aligned
//! writes, fsync, and a read-back verification by hashes.
//!
//! How holes are handled:
//! - a regular-file target is truncated to nothing and extended to the image
//!   size, so every hole already reads as zeros and stays a hole;
//! - a block device gets `BLKZEROOUT` on each hole: the kernel turns it into
//!   WRITE ZEROES / a zeroing discard where the device supports it and writes
//!   zeros itself otherwise. Stale data of an earlier image never survives in
//!   a hole, so the device ends byte-identical to the image.
//!
//! Verification reads what the device stored, not what the page cache
//! remembers: each chunk is read back once its writeback finished
//! (`sync_file_range`) and its cached pages were dropped
//! (`POSIX_FADV_DONTNEED`), by a thread that follows the writer so reading
//! overlaps writing. Mapped ranges compare by BLAKE3 per 4 MiB chunk:
//! cryptographic, and several times faster than SHA-256, so hashing never
//! limits the copy. The image's hashes come from the buffers that were
//! written, so the image is read once. After the fsync, holes must read as
//! zeros (on a regular file, a hole that is still a hole needs no read).

pub mod job;
pub mod readback;
pub mod steps;

use super::blockdev::Target;
use crate::fsutil::io_err;
use camino::{Utf8Path, Utf8PathBuf};
use readback::verify_with;
use rustix::fs::Advice;
use serde::Serialize;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Size of one write (and of one verified chunk).
pub const CHUNK: u64 = 4 * 1024 * 1024;
/// Mapped ranges are widened to this alignment.
const ALIGN: u64 = 4096;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum FlashError {
    #[error(transparent)]
    Io(#[from] crate::fsutil::IoError),
    #[error("{path} is busy (another program or a mount holds it open exclusively); close it and try again")]
    Busy { path: String },
    #[error("verification failed: {target} differs from {image} at byte {offset} (0x{offset:x}); the device may be faulty or fake, try another one")]
    Mismatch {
        image: String,
        target: String,
        offset: u64,
    },
    #[error("verification failed: {target} is {actual} bytes long, the image {expected}")]
    Length {
        target: String,
        expected: u64,
        actual: u64,
    },
    #[error("interrupted: {target} is now INCOMPLETE ({done} of {total} bytes processed); flash it again before using it")]
    Interrupted {
        target: String,
        done: u64,
        total: u64,
    },
    #[error("verification interrupted: {target} was written completely but is NOT verified ({done} of {total} bytes checked); run the flash again to be sure")]
    VerifyInterrupted {
        target: String,
        done: u64,
        total: u64,
    },
    #[error("{target} is the image itself; give another file or a device")]
    SameFile { target: String },
    #[error("{image} is a QCOW2 image, which a disk cannot boot; flash a raw image or ISO (`bifrost build raw|iso`, or `qemu-img convert -O raw {image} nixos.raw`)")]
    Qcow2 { image: String },
    #[error("cannot catch Ctrl-C: {0}")]
    Signal(#[source] std::io::Error),
    #[error("{image} is {kind}, not an image file; nothing was written. The image comes first: `bifrost flash IMAGE DEVICE`")]
    NotAnImage { image: String, kind: &'static str },
    #[error("{image} is empty; nothing was written (is it the image you meant?)")]
    EmptyImage { image: String },
    #[error("{image} is a block device, not an image file; nothing was written. Check the order (`bifrost flash IMAGE DEVICE`), or pass --image-is-device to copy a whole device")]
    DeviceImage { image: String },
    #[error(transparent)]
    Target(#[from] super::blockdev::BlockdevError),
    #[error("standard input is not a terminal, so bifrost cannot ask before overwriting the device; pass --yes to confirm")]
    NotATerminal,
    #[error("the answer was not {0:?}; nothing was written")]
    Declined(String),
}

/// What is being done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Write,
    Verify,
}

/// A progress report: `done` of `total` bytes in `phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub phase: Phase,
    pub done: u64,
    pub total: u64,
}

/// How to flash.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub verify: bool,
    /// The image may be a block device (copying one device onto another).
    pub image_is_device: bool,
}

/// What a finished flash did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub image_size: u64,
    /// Bytes of data written (the mapped ranges).
    pub written: u64,
    /// Bytes of holes zeroed on the target (0 for a file target).
    pub zeroed: u64,
    pub verified: bool,
    pub write_secs: f64,
    pub verify_secs: f64,
}

/// A byte range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Range {
    pub start: u64,
    pub end: u64,
}

impl Range {
    /// All of `size` bytes.
    pub fn whole(size: u64) -> Range {
        Range {
            start: 0,
            end: size,
        }
    }
    pub fn len(&self) -> u64 {
        self.end - self.start
    }
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// Where an image holds data and where it has holes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Map {
    pub size: u64,
    /// Mapped ranges, sorted, disjoint, 4 KiB aligned (the last one ends at `size`).
    pub data: Vec<Range>,
}

impl Map {
    /// Bytes in mapped ranges.
    pub fn mapped(&self) -> u64 {
        self.data.iter().map(Range::len).sum()
    }

    /// The holes between the mapped ranges.
    pub fn holes(&self) -> Vec<Range> {
        let mut holes = Vec::new();
        let mut at = 0;
        for r in &self.data {
            if r.start > at {
                holes.push(Range {
                    start: at,
                    end: r.start,
                });
            }
            at = r.end;
        }
        if at < self.size {
            holes.push(Range {
                start: at,
                end: self.size,
            });
        }
        holes
    }
}

/// The block map of an open file, from `SEEK_DATA`/`SEEK_HOLE`. A file
/// system without them reports one range covering everything, which is slow
/// but right.
pub fn map_file(file: &File, size: u64) -> std::io::Result<Map> {
    let fd = file.as_raw_fd();
    let mut raw: Vec<Range> = Vec::new();
    let mut at: u64 = 0;
    while at < size {
        // SAFETY: lseek on a file descriptor we own; no memory is touched.
        let data = unsafe { libc::lseek(fd, at as libc::off_t, libc::SEEK_DATA) };
        if data < 0 {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ENXIO) => break, // no data after `at`
                Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => {
                    raw.push(Range {
                        start: at,
                        end: size,
                    });
                    break;
                }
                _ => return Err(e),
            }
        }
        let data = data as u64;
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data as libc::off_t, libc::SEEK_HOLE) };
        if hole < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let hole = (hole as u64).min(size);
        if hole > data {
            raw.push(Range {
                start: data,
                end: hole,
            });
        }
        at = hole.max(data + 1);
    }
    Ok(Map {
        size,
        data: align(raw, size),
    })
}

/// Widen ranges to [`ALIGN`] and merge the ones that touch.
fn align(raw: Vec<Range>, size: u64) -> Vec<Range> {
    let mut out: Vec<Range> = Vec::new();
    for r in raw {
        let start = r.start / ALIGN * ALIGN;
        let end = r.end.div_ceil(ALIGN).saturating_mul(ALIGN).min(size);
        match out.last_mut() {
            Some(last) if start <= last.end => last.end = last.end.max(end),
            _ => out.push(Range { start, end }),
        }
    }
    out
}

/// Split `r` at absolute multiples of [`CHUNK`], so writes stay aligned.
fn chunks(r: Range) -> impl Iterator<Item = Range> {
    let mut at = r.start;
    std::iter::from_fn(move || {
        if at >= r.end {
            return None;
        }
        let end = ((at / CHUNK + 1) * CHUNK).min(r.end);
        let c = Range { start: at, end };
        at = end;
        Some(c)
    })
}

/// A Ctrl-C (SIGINT, also SIGTERM) flag: once registered, the signals no
/// longer kill the process; long loops check the flag and stop cleanly.
pub fn interrupt_flag() -> Result<Arc<AtomicBool>, FlashError> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, flag.clone()).map_err(FlashError::Signal)?;
    }
    Ok(flag)
}

/// Per-chunk BLAKE3 of the image's mapped ranges, in order.
type Digests = Vec<(Range, [u8; 32])>;

/// Open the image: its file, size and block map. Only a regular non-empty
/// file (or a block device, when `allow_device`) is an image: anything else
/// is refused before it is opened (a FIFO would block, or be drained), and
/// long before the target is.
fn open_image(image: &Utf8Path, allow_device: bool) -> Result<(File, Map), FlashError> {
    let (f, size, is_device) = checked_image(image, allow_device)?;
    let map = if is_device {
        // A device has no holes to find: all of it is data.
        Map {
            size,
            data: vec![Range {
                start: 0,
                end: size,
            }],
        }
    } else {
        map_file(&f, size).map_err(io_err(image, "map image (SEEK_DATA)"))?
    };
    Ok((f, map))
}

/// What a file type is called in messages.
fn kind_of(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a pipe (FIFO)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    }
}

/// Check and open the image: (file, size, whether it is a block device).
fn checked_image(image: &Utf8Path, allow_device: bool) -> Result<(File, u64, bool), FlashError> {
    use std::io::{Seek, SeekFrom};
    use std::os::unix::fs::FileTypeExt;
    let check = |t: std::fs::FileType| -> Result<bool, FlashError> {
        if t.is_file() {
            Ok(false)
        } else if t.is_block_device() && allow_device {
            Ok(true)
        } else if t.is_block_device() {
            Err(FlashError::DeviceImage {
                image: image.to_string(),
            })
        } else {
            Err(FlashError::NotAnImage {
                image: image.to_string(),
                kind: kind_of(t),
            })
        }
    };
    // Checked before opening (opening a FIFO blocks), and again on the open
    // file, in case the path was swapped in between.
    check(
        std::fs::metadata(image)
            .map_err(io_err(image, "stat image"))?
            .file_type(),
    )?;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(image)
        .map_err(io_err(image, "open image"))?;
    let is_device = check(
        f.metadata()
            .map_err(io_err(image, "stat image"))?
            .file_type(),
    )?;
    let size = f
        .seek(SeekFrom::End(0))
        .map_err(io_err(image, "size image"))?;
    if size == 0 {
        return Err(FlashError::EmptyImage {
            image: image.to_string(),
        });
    }
    Ok((f, size, is_device))
}

/// The size of `image`, for the safety checks; refuses what is not an image
/// (see [`open_image`]) without opening anything else.
pub fn image_size(image: &Utf8Path, allow_device: bool) -> Result<u64, FlashError> {
    checked_image(image, allow_device).map(|(_, size, _)| size)
}

/// Chunks in flight between the reading, writing and hashing threads.
const IN_FLIGHT: usize = 4;
/// How far ahead of the reader the kernel is asked to fetch (`WILLNEED`).
const READAHEAD: u64 = 8 * CHUNK;

fn digest(b: &[u8]) -> [u8; 32] {
    *blake3::hash(b).as_bytes()
}

/// Advice to the kernel about `r` of `f`: a refusal only costs speed.
fn fadvise(f: &File, r: Range, advice: Advice) {
    // A length of 0 (None) would mean "to the end of the file", as in posix_fadvise(2).
    let _ = rustix::fs::fadvise(f, r.start, std::num::NonZeroU64::new(r.len()), advice);
}

/// Chunks as a reader thread delivers them.
type ChunkReceiver = mpsc::Receiver<Result<(Range, Vec<u8>), FlashError>>;

/// Read `chunks` of `file` in order on a thread of `scope`, asking the
/// kernel to fetch ahead; buffers come from and go back to a pool.
fn reader<'s>(
    scope: &'s std::thread::Scope<'s, '_>,
    file: &'s File,
    path: &'s Utf8Path,
    chunks: Vec<Range>,
    op: &'static str,
) -> (ChunkReceiver, mpsc::Sender<Vec<u8>>) {
    let (tx, rx) = mpsc::sync_channel(IN_FLIGHT);
    let (pool_tx, pool_rx) = mpsc::channel::<Vec<u8>>();
    for _ in 0..IN_FLIGHT + 2 {
        let _ = pool_tx.send(Vec::with_capacity(CHUNK as usize));
    }
    scope.spawn(move || {
        let mut ahead = 0;
        for (i, c) in chunks.iter().enumerate() {
            // Keep about READAHEAD bytes requested beyond this chunk.
            while ahead < chunks.len() && chunks[ahead].start < c.start + READAHEAD {
                if ahead > i || i == 0 {
                    fadvise(file, chunks[ahead], Advice::WillNeed);
                }
                ahead += 1;
            }
            let Ok(mut b) = pool_rx.recv() else { return };
            b.resize(c.len() as usize, 0);
            let r = file.read_exact_at(&mut b, c.start).map(|()| (*c, b));
            let failed = r.is_err();
            if tx.send(r.map_err(|e| io_err(path, op)(e).into())).is_err() || failed {
                return;
            }
        }
    });
    (rx, pool_tx)
}

/// Flash `image` onto `target` (checked by [`super::blockdev::check`] before).
/// `cancel` stops the work between chunks; `progress` hears about every chunk.
///
/// Three threads overlap the work: one reads the image, this one writes
/// (and starts the device's writeback at once with `sync_file_range`), one
/// hashes what was written.
pub fn flash(
    image: &Utf8Path,
    target: &Target,
    opts: Options,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(Progress),
) -> Result<Report, FlashError> {
    let (src, map) = open_image(image, opts.image_is_device)?;
    let (path, is_file) = match target {
        Target::File { path } => (path.clone(), true),
        Target::Disk(d) => (d.path.clone(), false),
    };
    steps::refuse(image, &src, &path)?;
    let dst = open_target(&path, is_file, map.size)?;
    let start = Instant::now();
    let work = steps::work(&map, is_file);
    fadvise(&src, Range::whole(map.size), Advice::Sequential);
    progress(Progress {
        phase: Phase::Write,
        done: 0,
        total: work.total,
    });
    // With verification on, a verifier thread follows the writer (see
    // steps::Verifier), so reading back overlaps writing.
    let reread = if opts.verify {
        Some(File::open(&path).map_err(io_err(&path, "open for verification"))?)
    } else {
        None
    };
    let flow = steps::Flow {
        image,
        src: &src,
        path: &path,
        dst: &dst,
        reread: reread.as_ref(),
        cancel,
        mapped: map.mapped(),
    };
    let written = flow.run(&work, start, progress);
    written.result?;
    let mut report = Report {
        image_size: map.size,
        written: map.mapped(),
        zeroed: written.zeroed,
        verified: false,
        write_secs: written.write_secs,
        verify_secs: 0.0,
    };
    drop(dst);
    if opts.verify {
        // The data was read back already; what is left are the holes.
        verify_with(
            image,
            &src,
            &map,
            &[],
            map.mapped(),
            &path,
            is_file,
            cancel,
            progress,
        )?;
        report.verified = true;
        report.verify_secs = written.verify_start.elapsed().as_secs_f64();
    }
    Ok(report)
}

/// Wait until `r` of `f` is written to the device (starting it if needed).
fn wait_written(f: &File, r: Range) {
    sync_range(
        f,
        r,
        libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER,
    );
}

/// `sync_file_range(2)` on `r` of `f` (rustix has no wrapper for it). Its
/// result is not needed: a range that failed to write shows up in the final
/// fsync and in verification.
fn sync_range(f: &File, r: Range, flags: libc::c_uint) {
    // SAFETY: syscall on our own descriptor; no memory involved.
    unsafe {
        libc::sync_file_range(
            f.as_raw_fd(),
            r.start as libc::off_t,
            r.len() as libc::off_t,
            flags,
        )
    };
}

/// The mismatch error for chunk `c` read back as `got`, at its first
/// differing byte (found against the image's own bytes).
fn first_difference(
    image: &Utf8Path,
    src: &File,
    target: &Utf8Path,
    c: Range,
    got: &[u8],
) -> FlashError {
    let mut want = vec![0u8; c.len() as usize];
    if let Err(e) = src.read_exact_at(&mut want, c.start) {
        return io_err(image, "read image")(e).into();
    }
    let i = want.iter().zip(got.iter()).position(|(a, b)| a != b);
    FlashError::Mismatch {
        image: image.to_string(),
        target: target.to_string(),
        offset: c.start + i.unwrap_or(0) as u64,
    }
}

/// Start writing `r` back to the device now, without waiting, so the final
/// fsync has little left to do and the device never idles.
fn start_writeback(f: &File, r: Range) {
    sync_range(f, r, libc::SYNC_FILE_RANGE_WRITE);
}

/// Verify that `target` reads back exactly as `image` (standalone: the
/// image's hashes are computed here). Returns the first mismatching offset
/// as [`FlashError::Mismatch`].
pub fn verify(
    image: &Utf8Path,
    target: &Utf8Path,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), FlashError> {
    let (src, map) = open_image(image, true)?;
    let is_file = std::fs::metadata(target)
        .map_err(io_err(target, "stat"))?
        .is_file();
    let mut digests: Digests = Vec::new();
    let mut buf = vec![0u8; CHUNK as usize];
    for r in &map.data {
        for c in chunks(*r) {
            let b = &mut buf[..c.len() as usize];
            src.read_exact_at(b, c.start)
                .map_err(io_err(image, "read image"))?;
            digests.push((c, digest(b)));
        }
    }
    verify_with(
        image, &src, &map, &digests, 0, target, is_file, cancel, progress,
    )
}

/// Whether `r` of a regular file holds no data at all (so it reads as zeros).
fn still_hole(f: &File, r: Range) -> bool {
    // SAFETY: lseek on our own descriptor.
    let next = unsafe { libc::lseek(f.as_raw_fd(), r.start as libc::off_t, libc::SEEK_DATA) };
    if next < 0 {
        // ENXIO: no data up to the end of the file.
        return std::io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO);
    }
    next as u64 >= r.end
}

/// Open the target for writing. A file is emptied and re-extended, so its
/// holes read as zeros; a block device is opened exclusively (`O_EXCL`
/// fails when it is mounted or claimed by device-mapper).
fn open_target(path: &Utf8PathBuf, is_file: bool, size: u64) -> Result<File, FlashError> {
    if is_file {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(io_err(path, "open target"))?;
        f.set_len(size).map_err(io_err(path, "set length"))?;
        return Ok(f);
    }
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_EXCL)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::EBUSY) {
                FlashError::Busy {
                    path: path.to_string(),
                }
            } else {
                io_err(path, "open device")(e).into()
            }
        })
}

/// `BLKZEROOUT` from linux/fs.h: `_IO(0x12, 127)`.
const BLKZEROOUT: libc::c_ulong = 0x127f;

/// Make `r` of a block device read as zeros: `BLKZEROOUT` for the
/// 512-byte-aligned part, written zeros for the rest or when the ioctl fails.
fn zero_range(dst: &File, path: &Utf8Path, r: Range, buf: &mut [u8]) -> Result<(), FlashError> {
    let a = r.start.div_ceil(512) * 512;
    let b = r.end / 512 * 512;
    let mut written_zeros = |s: u64, e: u64| -> Result<(), FlashError> {
        let mut at = s;
        while at < e {
            let n = (e - at).min(buf.len() as u64) as usize;
            buf[..n].fill(0);
            dst.write_all_at(&buf[..n], at)
                .map_err(io_err(path, "write zeros"))?;
            at += n as u64;
        }
        Ok(())
    };
    if b > a {
        let range: [u64; 2] = [a, b - a];
        // SAFETY: BLKZEROOUT reads two u64 from the pointer, which lives across the call.
        let rc = unsafe { libc::ioctl(dst.as_raw_fd(), BLKZEROOUT as _, range.as_ptr()) };
        if rc != 0 {
            written_zeros(a, b)?;
        }
        written_zeros(r.start, a)?;
        written_zeros(b, r.end)?;
    } else {
        written_zeros(r.start, r.end)?;
    }
    Ok(())
}

/// Throughput and remaining time, for progress lines.
pub fn rate_and_eta(done: u64, total: u64, elapsed: Duration) -> (f64, Option<Duration>) {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 || done == 0 {
        return (0.0, None);
    }
    let rate = done as f64 / secs;
    let eta = Duration::from_secs_f64((total.saturating_sub(done)) as f64 / rate);
    (rate, Some(eta))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn sparse(dir: &Utf8Path, size: u64, data: &[(u64, &[u8])]) -> Utf8PathBuf {
        let p = dir.join("img");
        let f = File::create(&p).unwrap();
        f.set_len(size).unwrap();
        for (off, bytes) in data {
            f.write_all_at(bytes, *off).unwrap();
        }
        p
    }

    /// Flash `img` onto the file `out`, verifying, as `bifrost flash` does by default.
    fn flash_file(
        img: &Utf8Path,
        out: &Utf8Path,
        flag: &AtomicBool,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Report, FlashError> {
        let target = Target::File {
            path: out.to_owned(),
        };
        let opts = Options {
            verify: true,
            ..Options::default()
        };
        flash(img, &target, opts, flag, progress)
    }

    fn tmp() -> (tempfile::TempDir, Utf8PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = Utf8PathBuf::from_path_buf(d.path().to_path_buf()).unwrap();
        (d, p)
    }

    #[test]
    fn map_finds_data_and_holes() {
        let (_d, dir) = tmp();
        let mib = 1 << 20;
        let img = sparse(
            &dir,
            64 * mib,
            &[(0, b"boot"), (10 * mib + 5, b"x"), (64 * mib - 1, b"z")],
        );
        let f = File::open(&img).unwrap();
        let m = map_file(&f, 64 * mib).unwrap();
        // File systems may allocate bigger blocks, but data must be covered
        // and far-apart data must not merge into one range.
        assert!(m.data.len() >= 3, "{m:?}");
        for off in [0, 10 * mib + 5, 64 * mib - 1] {
            assert!(
                m.data.iter().any(|r| r.start <= off && off < r.end),
                "{off} not mapped: {m:?}"
            );
        }
        assert!(m.mapped() < 8 * mib, "{m:?}");
        let holes: u64 = m.holes().iter().map(Range::len).sum();
        assert_eq!(holes + m.mapped(), 64 * mib);
    }

    #[test]
    fn chunks_are_aligned_to_absolute_offsets() {
        let c: Vec<Range> = chunks(Range {
            start: 4096,
            end: 2 * CHUNK + 10,
        })
        .collect();
        assert_eq!(
            c[0],
            Range {
                start: 4096,
                end: CHUNK
            }
        );
        assert_eq!(
            c[1],
            Range {
                start: CHUNK,
                end: 2 * CHUNK
            }
        );
        assert_eq!(
            c[2],
            Range {
                start: 2 * CHUNK,
                end: 2 * CHUNK + 10
            }
        );
    }

    #[test]
    fn file_flash_is_identical_and_sparse_and_verify_catches_corruption() {
        let (_d, dir) = tmp();
        let mib = 1 << 20;
        let payload: Vec<u8> = (0..3 * mib as usize).map(|i| (i % 251) as u8 + 1).collect();
        let img = sparse(&dir, 32 * mib, &[(mib, &payload), (31 * mib, b"end")]);
        let out = dir.join("out");
        // Stale bytes in the target where the image has a hole must vanish.
        let mut stale = File::create(&out).unwrap();
        stale.write_all(&vec![0xAA; 40 * mib as usize]).unwrap();
        drop(stale);
        let flag = AtomicBool::new(false);
        let mut last = None;
        let r = flash_file(&img, &out, &flag, &mut |p| last = Some(p)).unwrap();
        assert!(r.verified);
        assert_eq!(std::fs::read(&img).unwrap(), std::fs::read(&out).unwrap());
        assert_eq!(last.unwrap().phase, Phase::Verify);
        use std::os::unix::fs::MetadataExt;
        assert!(
            std::fs::metadata(&out).unwrap().blocks() * 512 < 8 * mib,
            "target not sparse"
        );

        // Corrupt one byte in data, then one in a hole: both found at their offset.
        let f = std::fs::OpenOptions::new().write(true).open(&out).unwrap();
        f.write_all_at(&[0], 2 * mib + 17).unwrap();
        f.sync_all().unwrap();
        match verify(&img, &out, &flag, &mut |_| {}) {
            Err(FlashError::Mismatch { offset, .. }) => assert_eq!(offset, 2 * mib + 17),
            other => panic!("{other:?}"),
        }
        f.write_all_at(&[payload[mib as usize + 17]], 2 * mib + 17)
            .unwrap();
        f.write_all_at(&[7], 20 * mib + 3).unwrap();
        f.sync_all().unwrap();
        match verify(&img, &out, &flag, &mut |_| {}) {
            Err(FlashError::Mismatch { offset, .. }) => assert_eq!(offset, 20 * mib + 3),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cancel_stops_and_says_incomplete() {
        let (_d, dir) = tmp();
        let img = sparse(&dir, 16 << 20, &[(0, &[1u8; 4096])]);
        let flag = AtomicBool::new(true);
        let e = flash_file(&img, &dir.join("o"), &flag, &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("INCOMPLETE"), "{e}");
    }

    #[test]
    fn refuses_itself_and_qcow2() {
        let (_d, dir) = tmp();
        let img = sparse(&dir, 1 << 20, &[(0, b"data")]);
        let flag = AtomicBool::new(false);
        let e = flash_file(&img, &img, &flag, &mut |_| {}).unwrap_err();
        assert!(matches!(e, FlashError::SameFile { .. }), "{e}");
        assert_eq!(&std::fs::read(&img).unwrap()[..4], b"data");
        let q = sparse(&dir, 1 << 20, &[(0, b"QFI\xfb")]);
        let e = flash_file(&q, &dir.join("o"), &flag, &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("qemu-img convert"), "{e}");
    }

    #[test]
    fn first_difference_names_the_exact_byte() {
        let (_d, dir) = tmp();
        let img = sparse(&dir, 1 << 20, &[(4096, &[9u8; 4096])]);
        let src = File::open(&img).unwrap();
        let mut got = vec![9u8; 4096];
        got[100] = 8;
        let c = Range {
            start: 4096,
            end: 8192,
        };
        match first_difference(&img, &src, Utf8Path::new("t"), c, &got) {
            FlashError::Mismatch { offset, .. } => assert_eq!(offset, 4196),
            e => panic!("{e}"),
        }
    }

    #[test]
    fn eta_is_computed_from_rate() {
        let (rate, eta) = rate_and_eta(50, 100, Duration::from_secs(5));
        assert_eq!(rate, 10.0);
        assert_eq!(eta, Some(Duration::from_secs(5)));
        assert_eq!(rate_and_eta(0, 100, Duration::from_secs(1)).1, None);
    }
}
