//! Deployment: flashing images, running them in a VM, and the doctor checks.
