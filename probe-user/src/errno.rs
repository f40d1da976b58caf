//! Kernel return values by name: "EBUSY", not -16.
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A kernel function's return value: 0 or a negative errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Ret(pub i32);

impl Ret {
    pub fn ok(self) -> bool {
        self.0 == 0
    }

    /// "EBUSY" for -16, "ok" for 0; the number itself when no name is known.
    pub fn name(self) -> String {
        errno_name(self.0)
    }
}

impl fmt::Display for Ret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// Kernel-internal errnos (include/linux/errno.h) that userspace never sees, so libc does not
/// name them.
const KERNEL_ONLY: &[(i32, &str)] = &[
    (512, "ERESTARTSYS"),
    (513, "ERESTARTNOINTR"),
    (514, "ERESTARTNOHAND"),
    (515, "ENOIOCTLCMD"),
    (516, "ERESTART_RESTARTBLOCK"),
    (517, "EPROBE_DEFER"),
    (518, "EOPENSTALE"),
    (519, "ENOPARAM"),
    (521, "EBADHANDLE"),
    (522, "ENOTSYNC"),
    (523, "EBADCOOKIE"),
    (524, "ENOTSUPP"),
    (525, "ETOOSMALL"),
    (526, "ESERVERFAULT"),
    (527, "EBADTYPE"),
    (528, "EJUKEBOX"),
    (529, "EIOCBQUEUED"),
    (530, "ERECALLCONFLICT"),
];

/// The name of a return value: "ok" for 0, "EBUSY" for -16 (or 16), the number otherwise.
pub fn errno_name(ret: i32) -> String {
    if ret == 0 {
        return "ok".into();
    }
    let code = ret.unsigned_abs() as i32;
    if let Some((_, name)) = KERNEL_ONLY.iter().find(|(c, _)| *c == code) {
        return (*name).into();
    }
    match nix::errno::Errno::from_raw(code) {
        nix::errno::Errno::UnknownErrno => ret.to_string(),
        e => format!("{e:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_errnos_hotplug_returns() {
        assert_eq!(errno_name(-16), "EBUSY");
        assert_eq!(errno_name(-22), "EINVAL");
        assert_eq!(errno_name(-12), "ENOMEM");
        assert_eq!(errno_name(-4), "EINTR");
        assert_eq!(errno_name(-524), "ENOTSUPP");
        assert_eq!(errno_name(0), "ok");
        assert_eq!(errno_name(-4000), "-4000");
        assert_eq!(Ret(-16).to_string(), "EBUSY");
    }
}
