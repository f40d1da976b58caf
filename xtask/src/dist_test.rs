//! The Debian package's install test (in `cargo xtask test`, and `cargo xtask dist --test`):
//! builds the package, unpacks it into a scratch root with `dpkg -x` (nothing is installed on
//! the machine), then runs what it installed: `mhpscope --version` and `mhpscope probes`, every
//! man page through man(1), the bash completion in bash, the zsh and fish ones where those
//! shells are, and the unit through `systemd-analyze verify` and `security` where systemd is.

use crate::lab::checks::Tally;
use crate::{dist, util};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

const UNIT: &str = "mhpscope-serve.service";
const UNIT_DIR: &str = "usr/lib/systemd/system";
/// `systemd-analyze security` exposure (0 safest, 10 unprotected) the unit may reach; 2.6 when
/// written. Most of what remains is inherent: root, BPF, the network listener.
const MAX_EXPOSURE: f64 = 3.0;

struct Checker {
    tally: Tally,
}

impl Checker {
    fn check(&mut self, name: &str, ok: bool, detail: impl AsRef<str>) {
        let detail = detail.as_ref().trim();
        if ok {
            self.tally.passed += 1;
            println!("ok   dist.{name}: {detail}");
        } else {
            self.tally.failed += 1;
            println!("FAIL dist.{name}: {detail}");
        }
    }

    fn skip(&self, name: &str, why: &str) {
        println!("skip dist.{name}: {why}");
    }

    /// Runs `cmd`; passes when it exits 0 and `accept` takes its stdout (Err: why not).
    fn run(
        &mut self,
        name: &str,
        cmd: &mut Command,
        accept: impl FnOnce(&str, &str) -> Result<String, String>,
    ) {
        let what = util::describe(cmd);
        match cmd.stdin(Stdio::null()).output() {
            Err(e) => self.check(name, false, format!("cannot start `{what}`: {e}")),
            Ok(out) => {
                let (stdout, stderr) = texts(&out);
                if !out.status.success() {
                    self.check(
                        name,
                        false,
                        format!("`{what}` failed ({}): {}", out.status, stderr.trim()),
                    );
                } else {
                    match accept(&stdout, &stderr) {
                        Ok(detail) => self.check(name, true, detail),
                        Err(why) => self.check(name, false, format!("`{what}`: {why}")),
                    }
                }
            }
        }
    }
}

fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("").trim()
}

fn found(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One tally entry per check. An error means the package could not be built or unpacked.
pub fn run() -> Result<Tally> {
    let t0 = Instant::now();
    let deb = dist::run()?;
    let root = std::env::temp_dir().join(format!("mhpscope-dist-{}", std::process::id()));
    if root.exists() {
        std::fs::remove_dir_all(&root)?;
    }
    std::fs::create_dir_all(&root)?;
    util::run(Command::new("dpkg").arg("-x").arg(&deb).arg(&root)).context("unpacking the package")?;
    println!("dist: unpacked {} into {}", deb.display(), root.display());

    let mut c = Checker {
        tally: Tally::default(),
    };
    control(&mut c, &deb);
    let bin = root.join("usr/bin/mhpscope");
    c.run("version", Command::new(&bin).arg("--version"), |out, _| {
        let want = format!("mhpscope {}", env!("CARGO_PKG_VERSION"));
        if out.trim() == want {
            Ok(want)
        } else {
            Err(format!("printed {:?}, want {want:?}", out.trim()))
        }
    });
    // Unprivileged or on a locked-down kernel it explains each probe and exits 0.
    c.run("probes", Command::new(&bin).arg("probes"), |out, _| {
        let lines = out.lines().count();
        if lines > 1 {
            Ok(format!("exit 0, {lines} lines: {}", first_line(out)))
        } else {
            Err(format!("printed {out:?}"))
        }
    });
    man_pages(&mut c, &root);
    completions(&mut c, &root);
    unit(&mut c, &root);

    if c.tally.failed == 0 {
        std::fs::remove_dir_all(&root).ok();
    } else {
        println!("dist: scratch root kept for a look: {}", root.display());
    }
    println!(
        "dist: {} passed, {} failed ({})",
        c.tally.passed,
        c.tally.failed,
        util::secs(t0.elapsed())
    );
    Ok(c.tally)
}

/// The control fields, and that installing does not enable or start the service.
fn control(c: &mut Checker, deb: &Path) {
    c.run(
        "control",
        Command::new("dpkg-deb").arg("--field").arg(deb),
        |out, _| {
            let field = |name: &str| {
                out.lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                    .unwrap_or("")
                    .to_string()
            };
            let (package, depends) = (field("Package"), field("Depends"));
            if package == "mhpscope" && depends.contains("libc6") {
                Ok(format!(
                    "Package {package}, Version {}, Depends {depends}",
                    field("Version")
                ))
            } else {
                Err(format!("Package {package:?}, Depends {depends:?}"))
            }
        },
    );
    let scripts = std::env::temp_dir().join(format!("mhpscope-dist-control-{}", std::process::id()));
    std::fs::remove_dir_all(&scripts).ok();
    let extracted = util::run(Command::new("dpkg-deb").arg("--control").arg(deb).arg(&scripts));
    let postinst = std::fs::read_to_string(scripts.join("postinst")).unwrap_or_default();
    std::fs::remove_dir_all(&scripts).ok();
    // cargo-deb's postinst re-enables the unit only if the admin had enabled it, and restarts it
    // on upgrade only if it runs (try-restart); it never starts it.
    let starts = postinst.contains("deb-systemd-invoke start") || postinst.contains("systemctl start");
    let enables = postinst.contains("deb-systemd-helper enable") && !postinst.contains("was-enabled");
    c.check(
        "unit.not_started_on_install",
        extracted.is_ok() && postinst.contains(UNIT) && !starts && !enables,
        match extracted {
            Err(e) => format!("{e:#}"),
            Ok(()) => format!("postinst: daemon-reload, enable only if was-enabled, start {starts}"),
        },
    );
}

fn man_pages(c: &mut Checker, root: &Path) {
    let dir = root.join("usr/share/man/man1");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    pages.sort();
    let generated = std::fs::read_dir(dist::generated_dir().join("man"))
        .map(|d| d.count())
        .unwrap_or(0);
    c.check(
        "man.installed",
        !pages.is_empty()
            && pages.len() == generated
            && pages.iter().all(|p| p.extension().is_some_and(|e| e == "gz")),
        format!(
            "{} pages (gzipped) in {}, {generated} generated",
            pages.len(),
            dir.display()
        ),
    );
    for page in &pages {
        let name = page
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .trim_end_matches(".1.gz")
            .to_string();
        let mut cmd = Command::new("man");
        cmd.args(["--warnings", "-l"])
            .arg(page)
            .env("LC_ALL", "C.UTF-8")
            .env("MANWIDTH", "80");
        c.run(&format!("man.{name}"), &mut cmd, |out, err| {
            if !err.trim().is_empty() {
                return Err(format!("warnings: {}", err.trim()));
            }
            if !out.contains("NAME") || !out.contains("SYNOPSIS") {
                return Err(format!("no NAME/SYNOPSIS in {} lines", out.lines().count()));
            }
            // The line under NAME: "mhpscope-serve - Serve Prometheus/OpenMetrics ...".
            let what = out
                .lines()
                .skip_while(|l| l.trim() != "NAME")
                .nth(1)
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_default();
            Ok(format!("{} lines: {what}", out.lines().count()))
        });
    }
}

fn completions(c: &mut Checker, root: &Path) {
    let bash = root.join("usr/share/bash-completion/completions/mhpscope");
    // Loaded the way bash-completion loads it, then asked to complete `mhpscope re`.
    let script = format!(
        "source '{}' && complete -p mhpscope && COMP_WORDS=(mhpscope re) COMP_CWORD=1 && \
         _mhpscope mhpscope re mhpscope && echo \"${{COMPREPLY[*]}}\"",
        bash.display()
    );
    c.run(
        "completion.bash",
        Command::new("bash").args(["--norc", "-c", &script]),
        |out, _| {
            let lines: Vec<&str> = out.lines().collect();
            match lines.as_slice() {
                [spec, reply]
                    if spec.contains("-F _mhpscope")
                        && spec.ends_with(" mhpscope")
                        && *reply == "record report" =>
                {
                    Ok(format!("{spec}; `mhpscope re<TAB>`: {reply}"))
                }
                _ => Err(format!("printed {out:?}")),
            }
        },
    );
    for (shell, file, check) in [
        ("zsh", "usr/share/zsh/vendor-completions/_mhpscope", ["-n"]),
        (
            "fish",
            "usr/share/fish/vendor_completions.d/mhpscope.fish",
            ["--no-execute"],
        ),
    ] {
        let path = root.join(file);
        let name = format!("completion.{shell}");
        if !found(shell) {
            let ok = path.is_file();
            if ok {
                c.skip(&name, &format!("no {shell} (installed: {file})"));
            } else {
                c.check(&name, false, format!("{file} missing"));
            }
            continue;
        }
        c.run(&name, Command::new(shell).args(check).arg(&path), |_, err| {
            if err.trim().is_empty() {
                Ok(format!("{file} parses"))
            } else {
                Err(err.trim().to_string())
            }
        });
    }
}

fn unit(c: &mut Checker, root: &Path) {
    let unit = root.join(UNIT_DIR).join(UNIT);
    let Ok(text) = std::fs::read_to_string(&unit) else {
        c.check("unit.installed", false, format!("{} missing", unit.display()));
        return;
    };
    c.check(
        "unit.loopback",
        text.contains("ExecStart=/usr/bin/mhpscope serve --listen 127.0.0.1:9464")
            && text.contains("IPAddressAllow=localhost"),
        "serve --listen 127.0.0.1:9464, IPAddressAllow=localhost",
    );
    if !found("systemd-analyze") {
        c.skip("unit.verify", "no systemd-analyze");
        return;
    }
    // verify checks that ExecStart's binary exists and that Documentation='s man pages do: point
    // both into the scratch root (a copy of the unit with the unpacked binary, MANPATH).
    let copy_dir = root.join("verify");
    let copy = copy_dir.join(UNIT);
    let written = std::fs::create_dir_all(&copy_dir).and_then(|()| {
        let bin = root.join("usr/bin/mhpscope");
        std::fs::write(&copy, text.replace("/usr/bin/mhpscope", &bin.to_string_lossy()))
    });
    if let Err(e) = written {
        c.check("unit.verify", false, format!("writing {}: {e}", copy.display()));
        return;
    }
    let mut verify = Command::new("systemd-analyze");
    verify
        .arg("verify")
        .arg(&copy)
        .env("MANPATH", root.join("usr/share/man"));
    c.run("unit.verify", &mut verify, |_, err| {
        if err.trim().is_empty() {
            Ok("systemd-analyze verify: no complaints (ExecStart, man pages, directives)".into())
        } else {
            Err(err.trim().to_string())
        }
    });
    let mut security = Command::new("systemd-analyze");
    security
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(format!("--root={}", root.display()))
        .arg(UNIT);
    c.run("unit.security", &mut security, |out, _| {
        let line = out
            .lines()
            .find(|l| l.contains("Overall exposure level"))
            .ok_or("no overall exposure level")?;
        let level: f64 = line
            .rsplit(':')
            .next()
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("cannot read {line:?}"))?;
        let line = line.trim_start_matches(['→', ' ']).to_string();
        if level <= MAX_EXPOSURE {
            Ok(format!("{line} (at most {MAX_EXPOSURE})"))
        } else {
            Err(format!("{line}: above {MAX_EXPOSURE}"))
        }
    });
}

/// `cargo xtask dist --test`: fails if any check fails.
pub fn run_cmd() -> Result<()> {
    let t = run()?;
    if t.failed > 0 {
        anyhow::bail!("{} of {} package checks failed", t.failed, t.passed + t.failed);
    }
    Ok(())
}
