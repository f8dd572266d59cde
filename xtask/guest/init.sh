#!/bin/busybox sh
# The guest's init (our code, in the initramfs): loads the 9p modules, then serves requests read from the serial
# console, one a line:
# - `run ID PROC DEV`: a RUN step. The page's 9p server (tag host9p) serves the stage root, with the step's
#   script as the hidden file `.lw-run`; the root stays mounted at /mnt between requests (the page swaps the tree
#   it serves), so a step costs no mount or unmount. PROC and DEV are 1 when the root has /proc and /dev, which
#   then get the guest's own. The script runs with its output on the console, then `lw-exit ID CODE` is printed.
#   `lw-at ID mounted` says when the root was ready (the page times the phases).
# - `ctr ID PROC DEV`: a container (the tab's `run`): the same, but the script runs in the background in a
#   session of its own on the second serial port, a terminal, so that `stop` lines still arrive; when it ends, the
#   end marker `ESC ] lw-end;ID BEL` follows its output on that port and `lw-exit ID CODE` is printed on the
#   console.
# - `stop ID SECONDS`: docker's stop for the running container: SIGTERM to its first process, SIGKILL after
#   SECONDS (the first process of a PID namespace ends every other one with it).
# Every process forked here costs the emulator about as much as a small step itself, so the loop runs shell
# builtins where it can.
# Set the guest up once, then go on as root with the groups a root step gets ([0], as su's initgroups sets them):
# a step as root then needs no su of its own. (su execs; this stays process 1.)
if [ "$1" != serve ]; then
    /bin/busybox mkdir -p /proc /sys /dev /mnt /tmp /etc /usr/bin /usr/sbin /sbin
    /bin/busybox --install -s
    mount -t proc proc /proc
    mount -t sysfs sys /sys
    mount -t devtmpfs dev /dev
    for m in virtio virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci 9pnet 9pnet_virtio netfs \
        fscache 9p; do
        insmod /lib/modules/$m.ko || echo "lw-guest: insmod $m failed"
    done
    stty -F /dev/ttyS0 raw -echo
    echo 'lw:x:0:0::/:/bin/sh' > /etc/passwd
    : > /etc/group
    exec su -s /bin/sh lw -c 'exec /bin/busybox sh /init serve'
fi

# Make /mnt the stage root the page serves now ($1 $2: 1 when it has /proc and /dev). The 9p mount and the
# guest's /proc and /dev over it are kept from the step before when they fit; what a step left mounted under /mnt
# (a root step may mount) goes with the whole tree.
root_ready() {
    m9=0 mp=0 md=0 other=0
    while read -r _ at _; do
        case "$at" in
        /mnt) m9=1 ;;
        /mnt/proc) mp=1 ;;
        /mnt/dev) md=1 ;;
        /mnt/*) other=1 ;;
        esac
    done < /proc/mounts
    if [ $other = 1 ]; then
        umount -l /mnt
        m9=0
    fi
    if [ $m9 = 0 ]; then
        mount -t 9p -o trans=virtio,version=9p2000.L,msize=131072,cache=none host9p /mnt || return 1
        mp=0 md=0
    fi
    # A stat of the root: the kernel takes the new tree's root attributes (cache=none asks the server).
    [ -d /mnt/. ] || return 1
    if [ "$1" != $mp ]; then
        if [ "$1" = 1 ]; then mount -t proc proc /mnt/proc; else umount /mnt/proc; fi
    fi
    if [ "$2" != $md ]; then
        if [ "$2" = 1 ]; then mount -o bind /dev /mnt/dev; else umount /mnt/dev; fi
    fi
    return 0
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
        code=125
        if root_ready "$3" "$4"; then
            echo "lw-at $2 mounted"
            # A subshell, not a new shell: one process fewer.
            ( . /mnt/.lw-run ) < /dev/null
            code=$?
        fi
        echo "lw-exit $2 $code"
        ;;
    ctr)
        if root_ready "$3" "$4"; then
            (
                # setsid -c: a new session whose controlling terminal is ttyS1 (Ctrl-C, job control). Its leader
                # is a shell that waits for the container and then for ttyS1's output to drain (busybox stty sets
                # the mode with TCSADRAIN) before it exits: the leader's exit hangs the terminal up, and a hangup
                # drops the serial driver's pending output (a container's whole output, seen as an empty screen).
                setsid -c sh -c 'sh /mnt/.lw-run; c=$?; stty "$(stty -g)" 2>/dev/null; exit $c' <> /dev/ttyS1 >&0 2>&0
                code=$?
                # An end marker (an OSC sequence the page strips) after the container's last byte on the same
                # port: the console's lw-exit can overtake output still queued for ttyS1. Bounded, in case the
                # container left the port's output stopped (^S).
                timeout 5 printf '\033]lw-end;%s\007' "$2" > /dev/ttyS1
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
        # The subshell's child is the session's leader (the draining shell), whose child is the container's
        # chain (sh, su, env, unshare: one process, exec'd), whose child is the container's first process.
        leader=$(child_of "$ctr_pid") && chain=$(child_of "$leader") && first=$(child_of "$chain") || continue
        kill -TERM "$first" 2>/dev/null
        ( sleep "${3:-3}"; kill -KILL "$first" 2>/dev/null ) &
        ;;
    esac
done < /dev/ttyS0 > /dev/ttyS0 2>&1
