#!/bin/busybox sh
# The guest's init (our code, in the initramfs): loads the 9p modules, then serves requests read from the serial
# console, one a line:
# - `run ID BASE64`: a RUN step. BASE64 is a shell script written by the page's executor. The stage root (the
#   page's 9p server, tag host9p) is mounted at /mnt afresh, the script runs with its output on the console, the
#   root is unmounted and `lw-exit ID CODE` is printed.
# - `ctr ID BASE64`: a container (the tab's `run`): the same, but the script runs in the background in a session
#   of its own on the second serial port, a terminal, so that `stop` lines still arrive; when it ends, the end
#   marker `ESC ] lw-end;ID BEL` follows its output on that port and `lw-exit ID CODE` is printed on the console.
# - `stop ID SECONDS`: docker's stop for the running container: SIGTERM to its first process, SIGKILL after
#   SECONDS (the first process of a PID namespace ends every other one with it).
/bin/busybox mkdir -p /proc /sys /dev /mnt /tmp /usr/bin /usr/sbin /sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in virtio virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci 9pnet 9pnet_virtio netfs \
    fscache 9p; do
    insmod /lib/modules/$m.ko || echo "lw-guest: insmod $m failed"
done
stty -F /dev/ttyS0 raw -echo

# Mount the stage root; the script's own mounts come after.
mount_root() {
    mount -t 9p -o trans=virtio,version=9p2000.L,msize=131072,cache=none host9p /mnt || return 1
    [ -d /mnt/proc ] && mount -t proc proc /mnt/proc
    [ -d /mnt/dev ] && mount -o bind /dev /mnt/dev
    return 0
}

umount_root() {
    sync
    umount /mnt/dev 2>/dev/null
    umount /mnt/proc 2>/dev/null
    umount /mnt
}

# The child of process $1 (from /proc; every name here is one word, so the fields split as they should).
child_of() {
    for f in /proc/[0-9]*/stat; do
        read -r pid comm state ppid rest < "$f" 2>/dev/null || continue
        [ "$ppid" = "$1" ] && { echo "$pid"; return 0; }
    done
    return 1
}

echo "lw-guest: ready"
ctr_id=
ctr_pid=
while IFS= read -r line; do
    set -- $line
    case "$1" in
    run)
        echo "$3" | base64 -d > /tmp/run.sh
        code=125
        if mount_root; then
            sh /tmp/run.sh < /dev/null
            code=$?
            umount_root
        fi
        echo "lw-exit $2 $code"
        ;;
    ctr)
        echo "$3" | base64 -d > /tmp/ctr.sh
        if mount_root; then
            (
                # setsid -c: a new session whose controlling terminal is ttyS1 (Ctrl-C, job control).
                setsid -c sh /tmp/ctr.sh <> /dev/ttyS1 >&0 2>&0
                code=$?
                # An end marker (an OSC sequence the page strips) after the container's last byte on the same
                # port: the console's lw-exit can overtake output still queued for ttyS1. Bounded, in case the
                # container left the port's output stopped (^S).
                timeout 5 printf '\033]lw-end;%s\007' "$2" > /dev/ttyS1
                umount_root
                echo "lw-exit $2 $code"
            ) &
            ctr_id=$2
            ctr_pid=$!
        else
            echo "lw-exit $2 125"
        fi
        ;;
    stop)
        [ "$2" = "$ctr_id" ] || continue
        # The subshell's child is the session (sh, su, env, unshare: one process, exec'd), whose child is the
        # container's first process.
        leader=$(child_of "$ctr_pid") && first=$(child_of "$leader") || continue
        kill -TERM "$first" 2>/dev/null
        ( sleep "${3:-3}"; kill -KILL "$first" 2>/dev/null ) &
        ;;
    esac
done < /dev/ttyS0 > /dev/ttyS0 2>&1
