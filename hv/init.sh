#!/bin/sh
# faultline guest init (PID 1 of every guest; busybox sh).
#
# 1. mounts proc, sys, dev, run, tmp;
# 2. loads the kernel modules listed in /etc/fl/modules (dependency order,
#    computed by the image builder from each module's .modinfo);
# 3. finds the virtio-serial port named org.faultline.agent and execs the
#    guest agent as PID 1 (it reaps every orphan).
#
# Everything node-specific (hostname, /etc/hosts, NIC addresses, disks,
# commands, environment) arrives afterwards through the agent: the
# controller answers the agent's HELLO with a setup script (docs/images.md).
# Kernel command line read here: fl.debug=1 (trace this script).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm /dev/disk /run /tmp /var/log /var/tmp
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 shm /dev/shm
mount -t tmpfs -o mode=0755 run /run
case " $(cat /proc/cmdline) " in *" fl.debug=1 "*) set -x ;; esac
[ -e /dev/console ] && exec </dev/null >/dev/console 2>&1

read -r up _ </proc/uptime
echo "fl-init: [$up] loading modules"
while read -r m; do
    [ -n "$m" ] || continue
    insmod "/lib/modules/$m.ko" || echo "fl-init: insmod $m failed"
done </etc/fl/modules
ip link set lo up

port=
i=0
while [ -z "$port" ] && [ "$i" -lt 200 ]; do
    for d in /sys/class/virtio-ports/*; do
        [ -r "$d/name" ] || continue
        if [ "$(cat "$d/name")" = org.faultline.agent ]; then
            port=/dev/${d##*/}
        fi
    done
    [ -n "$port" ] && [ -c "$port" ] && break
    port=
    i=$((i + 1))
    usleep 10000
done
if [ -z "$port" ]; then
    echo "fl-init: no virtio-serial port named org.faultline.agent; halting"
    exec sleep 2147483647
fi
read -r up _ </proc/uptime
echo "fl-init: [$up] agent on $port"
exec /sbin/fl-agent "$port"
