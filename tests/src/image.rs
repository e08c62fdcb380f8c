//! Disk images without mounting: FAT images with mtools, ext4 with
//! `mke2fs -d`, GPT disks assembled with sgdisk.

use std::path::Path;
use std::process::Command;

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Make a FAT image of `size_mib` at `image` holding the contents of `dir`.
pub fn fat_image(dir: &Path, image: &Path, size_mib: u64, label: &str) {
    let _ = std::fs::remove_file(image);
    run(Command::new("mkfs.vfat")
        .args(["-n", label, "-C"])
        .arg(image)
        .arg((size_mib * 1024).to_string()));
    let entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    if !entries.is_empty() {
        run(Command::new("mcopy")
            .args(["-s", "-p", "-Q", "-i"])
            .arg(image)
            .args(&entries)
            .arg("::/"));
    }
}

/// Make an ext4 image of `size_mib` at `image` holding the contents of `dir`.
/// 4 KiB blocks: rEFInd's ext4 driver cannot read 1 KiB-block file systems.
pub fn ext4_image(dir: &Path, image: &Path, size_mib: u64, label: &str) {
    let _ = std::fs::remove_file(image);
    run(Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-b", "4096", "-L", label, "-d"])
        .arg(dir)
        .arg(image)
        .arg(format!("{size_mib}M")));
}

/// One partition of [`gpt_disk`].
pub struct Partition<'a> {
    pub image: &'a Path,
    /// sgdisk type code: `ef00` (ESP), `8300` (Linux).
    pub type_code: &'a str,
    pub name: &'a str,
}

/// Assemble a GPT disk at `disk` from partition images, 1 MiB aligned.
pub fn gpt_disk(disk: &Path, parts: &[Partition]) {
    const MIB: u64 = 1024 * 1024;
    let sizes: Vec<u64> = parts
        .iter()
        .map(|p| std::fs::metadata(p.image).unwrap().len().div_ceil(MIB))
        .collect();
    let total = 2 + sizes.iter().sum::<u64>() + 1;
    let f = std::fs::File::create(disk).unwrap();
    f.set_len(total * MIB).unwrap();
    drop(f);
    let mut sg = Command::new("sgdisk");
    sg.arg("-o");
    let mut start = 1u64;
    for (i, (p, size)) in parts.iter().zip(&sizes).enumerate() {
        let n = i + 1;
        sg.arg(format!(
            "-n{n}:{}:{}",
            start * 2048,
            (start + size) * 2048 - 1
        ))
        .arg(format!("-t{n}:{}", p.type_code))
        .arg(format!("-c{n}:{}", p.name));
        start += size;
    }
    run(sg.arg(disk));
    let mut start = 1u64;
    for (p, size) in parts.iter().zip(&sizes) {
        run(Command::new("dd")
            .arg(format!("if={}", p.image.display()))
            .arg(format!("of={}", disk.display()))
            .args(["bs=1M", "conv=notrunc,sparse", "status=none"])
            .arg(format!("seek={start}")));
        start += size;
    }
}
