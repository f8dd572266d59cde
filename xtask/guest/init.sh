#!/bin/busybox sh
# The guest's init (our code, in the initramfs): loads the 9p modules, then serves RUN requests read from the
# serial console. A request is one line, `run ID BASE64`: BASE64 is a shell script written by the page's executor.
# For each request the stage root (the page's 9p server, tag host9p) is mounted at /mnt afresh, the script runs
# with its output on the console, the root is unmounted and `lw-exit ID CODE` is printed.
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
echo "lw-guest: ready"
while IFS= read -r line; do
    set -- $line
    [ "$1" = run ] || continue
    echo "$3" | base64 -d > /tmp/run.sh
    code=125
    if mount -t 9p -o trans=virtio,version=9p2000.L,msize=131072,cache=none host9p /mnt; then
        [ -d /mnt/proc ] && mount -t proc proc /mnt/proc
        [ -d /mnt/dev ] && mount -o bind /dev /mnt/dev
        sh /tmp/run.sh < /dev/null
        code=$?
        sync
        umount /mnt/dev 2>/dev/null
        umount /mnt/proc 2>/dev/null
        umount /mnt
    fi
    echo "lw-exit $2 $code"
done < /dev/ttyS0 > /dev/ttyS0 2>&1
