//! The virtual machine the lab and the bench run: the lab kernels (Debian packages), the
//! initramfs, qemu, and the two sockets to it (QMP, and the guest's command channel).

pub mod guest;
pub mod initramfs;
pub mod kernel;
pub mod lines;
pub mod qemu;
pub mod qmp;
