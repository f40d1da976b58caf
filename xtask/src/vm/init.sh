#!/bin/sh
# mhpscope lab guest init. The host drives the guest over /dev/ttyS1: each request line is
# "<seq> <shell command>"; the reply is the command's output, then "\n@@END <seq> <rc>".
/bin/busybox mkdir -p /proc /sys /dev /tmp /run /usr/bin /usr/sbin /sbin
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox --install -s
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
# Pseudo-terminals, for tmux.
mkdir -p /dev/pts
mount -t devpts devpts /dev/pts
# The probes may want these; failures only matter to them.
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
# mhpscope reads the lockdown state from securityfs.
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
export PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
export HOME=/root
# tmux needs a UTF-8 locale (the initramfs carries C.UTF-8).
export LANG=C.UTF-8
echo "mhpscope-lab: guest $(uname -r) up after $(cut -d' ' -f1 /proc/uptime) s"
# Raw: no echo, no CR/LF translation, so files pass through unchanged.
stty -F /dev/ttyS1 115200 raw -echo
exec 0</dev/ttyS1 1>/dev/ttyS1
echo "@@READY"
while IFS= read -r line; do
    seq=${line%% *}
    cmd=${line#* }
    eval "$cmd" </dev/null >/tmp/.out 2>&1
    rc=$?
    cat /tmp/.out
    printf '\n@@END %s %s\n' "$seq" "$rc"
done
echo "mhpscope-lab: control channel closed, powering off" >/dev/console
poweroff -f
