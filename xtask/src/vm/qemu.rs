//! Starts qemu (TCG) with two NUMA nodes, DIMM slots, a QMP socket and a second serial port as
//! the command channel, and makes sure it never outlives us.

use crate::util;
use anyhow::{Context, Result};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct QemuConfig<'a> {
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    /// Guest console (ttyS0) goes here.
    pub console_log: &'a Path,
    /// qemu's own stderr goes here.
    pub qemu_log: &'a Path,
    /// Directory for the sockets; short, because unix socket paths are limited to 107 bytes.
    pub sock_dir: &'a Path,
    pub machine: &'a Machine,
}

/// What the scenario needs of the virtual machine.
#[derive(Debug, Clone, Default)]
pub struct Machine {
    /// `memory_hotplug.memmap_on_memory` on the kernel command line.
    pub memmap_on_memory: bool,
    /// A third NUMA node with a CPU and no memory (hot-adds to it need another node's memory).
    pub memoryless_node: bool,
    /// Backing file of a 1 GiB nvdimm on node 1 (`-machine nvdimm=on`).
    pub nvdimm: Option<PathBuf>,
    /// Host file behind a third serial port (the guest's ttyS2): the guest streams its
    /// recording there as it grows, for `lab --top`.
    pub stream: Option<PathBuf>,
    /// Deterministic guest time: the virtual clock advances one nanosecond per guest
    /// instruction (`-icount shift=0,sleep=off`; idle time skips to the next timer). For the
    /// bench: the emulator's wall-clock speed (host load, translation) no longer shows in the
    /// guest's time, so instructions, not emulation artefacts, are what is compared.
    pub icount: bool,
    /// A virtio balloon with free page reporting (`-device
    /// virtio-balloon-pci,free-page-reporting=on`): the guest hands free pages back to qemu,
    /// which discards them (its RSS falls).
    pub balloon: bool,
}

impl Machine {
    pub fn cmdline(&self) -> String {
        format!(
            "{CMDLINE} memory_hotplug.memmap_on_memory={}",
            u8::from(self.memmap_on_memory)
        )
    }
}

pub struct Qemu {
    child: Option<Child>,
    pub args: Vec<String>,
    pub qmp_sock: PathBuf,
    pub ctl_sock: PathBuf,
    pub qemu_log: PathBuf,
}

pub const CMDLINE: &str = "console=ttyS0 memhp_default_state=offline panic=-1 quiet loglevel=4";

impl Qemu {
    pub fn spawn(cfg: &QemuConfig) -> Result<Qemu> {
        std::fs::create_dir_all(cfg.sock_dir)?;
        let qmp_sock = cfg.sock_dir.join("qmp.sock");
        let ctl_sock = cfg.sock_dir.join("ctl.sock");
        for s in [&qmp_sock, &ctl_sock] {
            let _ = std::fs::remove_file(s);
        }
        let m = cfg.machine;
        let mut args: Vec<String> = vec![
            "-accel".into(),
            "tcg".into(),
            "-cpu".into(),
            "max".into(),
            "-nographic".into(),
            "-no-reboot".into(),
            // No network: the guest needs none, and the default NIC wants the ipxe ROM
            // (only a Recommends of qemu-system-x86, which setup does not install).
            "-nic".into(),
            "none".into(),
            "-monitor".into(),
            "none".into(),
            "-m".into(),
            "1G,slots=4,maxmem=8G".into(),
            "-smp".into(),
            if m.memoryless_node { "3" } else { "2" }.into(),
            "-object".into(),
            "memory-backend-ram,id=m0,size=512M".into(),
            "-numa".into(),
            "node,nodeid=0,memdev=m0,cpus=0".into(),
            "-object".into(),
            "memory-backend-ram,id=m1,size=512M".into(),
            "-numa".into(),
            "node,nodeid=1,memdev=m1,cpus=1".into(),
            "-kernel".into(),
            cfg.kernel.display().to_string(),
            "-initrd".into(),
            cfg.initrd.display().to_string(),
            "-append".into(),
            m.cmdline(),
            "-serial".into(),
            format!("file:{}", cfg.console_log.display()),
            "-chardev".into(),
            format!("socket,id=ctl,path={},server=on,wait=off", ctl_sock.display()),
            "-device".into(),
            "isa-serial,chardev=ctl".into(),
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", qmp_sock.display()),
        ];
        if let Some(file) = &m.stream {
            args.extend([
                "-chardev".into(),
                format!("file,id=stream,path={},append=on", file.display()),
                "-device".into(),
                "isa-serial,chardev=stream".into(),
            ]);
        }
        if m.icount {
            args.extend(["-icount".into(), "shift=0,sleep=off".into()]);
        }
        if m.balloon {
            args.extend([
                "-device".into(),
                "virtio-balloon-pci,id=balloon0,free-page-reporting=on".into(),
            ]);
        }
        if m.memoryless_node {
            args.extend(["-numa".into(), "node,nodeid=2,cpus=2".into()]);
        }
        if let Some(file) = &m.nvdimm {
            // Label-less: a labelled region of 1 GiB is misaligned for ndctl's devdax.
            args.extend([
                "-machine".into(),
                "pc,nvdimm=on".into(),
                "-object".into(),
                format!(
                    "memory-backend-file,id=nvm1,share=on,mem-path={},size=1G",
                    file.display()
                ),
                "-device".into(),
                "nvdimm,id=nv1,memdev=nvm1,node=1".into(),
            ]);
        }
        let log = std::fs::File::create(cfg.qemu_log)?;
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; it makes the kernel kill qemu if we die,
        // even by SIGKILL, so no qemu is ever left behind.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().context("starting qemu-system-x86_64")?;
        Ok(Qemu {
            child: Some(child),
            args,
            qmp_sock,
            ctl_sock,
            qemu_log: cfg.qemu_log.to_path_buf(),
        })
    }

    /// The qemu process's id (its RSS is the host's side of free page reporting).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The qemu process's resident memory (VmRSS of /proc/<pid>/status, KiB).
    pub fn rss_kib(&self) -> Result<u64> {
        let pid = self.pid().context("qemu is not running")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS in qemu's /proc status")
    }

    /// None while qemu runs; its exit status once it has exited.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        match &mut self.child {
            Some(c) => Ok(c.try_wait()?),
            None => Ok(None),
        }
    }

    /// Fails when qemu is gone, naming its exit status and its own log.
    pub fn ensure_running(&mut self) -> Result<()> {
        if let Some(st) = self.try_wait()? {
            anyhow::bail!("qemu exited ({st}); qemu log: {}", util::tail(&self.qemu_log, 10));
        }
        Ok(())
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(st) = self.try_wait()? {
                return Ok(Some(st));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(None)
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        self.kill();
    }
}
