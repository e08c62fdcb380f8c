//! Deployment: flashing images, running them in a VM, and the doctor checks.
//!
//! - [`blockdev`]: what a device is (size, removable, partitions, who uses it),
//!   read from sysfs and `/proc` under a root folder so tests can fake them.
//! - [`flash`]: sparse-aware, verified copy of an image onto a device or file.
//! - [`vm`]: QEMU + OVMF command lines, image format detection, libvirt XML.
//! - [`qemuopt`]: escaping of values inside QEMU options.
//! - [`doctor`]: checks of what bifrost's jobs need on this machine.

pub mod blockdev;
pub mod doctor;
pub mod flash;
pub mod qemuopt;
pub mod vm;
