//! Device profiles, detection from sysfs and lsblk, and rendering of the hardware module.
