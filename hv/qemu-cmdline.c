/*
 * A node's QEMU command line, built in one place (hv_qemu_cmdline) into
 * a growable argv that callers may extend (record/replay adds its
 * options after it).  Option values with a ',' are escaped (',,').
 *
 *   qemu-system-x86_64 -M microvm,... -object memory-backend-memfd ...
 *     -accel kvm|tcg -cpu host|max -m -smp -nodefaults -sandbox on,...
 *     -kernel vmlinux -initrd initrd.cpio -append "console=ttyS0 ..."
 *     -chardev file (console) -serial
 *     -chardev socket,fd=3 -mon (QMP)      -chardev socket,fd=4 (agent)
 *     per NIC:  -netdev stream (netback's socket) -device virtio-net-device
 *     per disk: -blockdev nbd|file(+raw) -device virtio-blk-device
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hv/node.h"

void hv_argv_take(struct hv_argv *a, char *s)
{
    a->v = fl_xgrow(a->v, &a->alloc, a->n + 2, sizeof *a->v);
    a->v[a->n++] = s;
    a->v[a->n] = NULL;
}

void hv_argv_add(struct hv_argv *a, const char *s)
{
    hv_argv_take(a, fl_xstrdup(s));
}

void hv_argv_addf(struct hv_argv *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = fl_xvasprintf(fmt, ap);
    va_end(ap);
    hv_argv_take(a, s);
}

void hv_argv_free(struct hv_argv *a)
{
    for (size_t i = 0; i < a->n; i++) {
        free(a->v[i]);
    }
    free(a->v);
    memset(a, 0, sizeof *a);
}

/* The host's TSC rate in kHz, measured once against CLOCK_MONOTONIC.
 * Under TCG the guest's TSC is the host's; without this the guest kernel
 * calibrates it against the emulated PIT, which intermittently fails
 * under TCG ("Unable to calibrate against PIT") and leaves the guest
 * hanging before init.  tsc_early_khz= skips that calibration. */
static unsigned long host_tsc_khz(void)
{
    static unsigned long khz;
    if (!khz) {
        int64_t t0 = fl_clock_mono_ns();
        uint64_t c0 = __builtin_ia32_rdtsc();
        struct timespec d = {0, 20 * 1000 * 1000};
        nanosleep(&d, NULL);
        uint64_t c1 = __builtin_ia32_rdtsc();
        int64_t t1 = fl_clock_mono_ns();
        khz = t1 > t0 ? (unsigned long)((double)(c1 - c0) / (double)(t1 - t0) * 1e6) : 0;
    }
    return khz;
}

void hv_qemu_optval(struct fl_buf *b, const char *s)
{
    for (; *s; s++) {
        fl_buf_append(b, s, 1);
        if (*s == ',') {
            fl_buf_append(b, ",", 1);
        }
    }
}

void hv_qemu_cmdline(struct hv_argv *a, const struct hv_node_config *c, enum hv_accel accel)
{
    struct fl_buf b = {0};
    const char *qemu = c->qemu_binary ? c->qemu_binary : getenv("FAULTLINE_QEMU");
    hv_argv_add(a, qemu && *qemu ? qemu : "qemu-system-x86_64");
#define ARG(s) hv_argv_add(a, s)
#define ARGB() hv_argv_take(a, fl_buf_steal(&b))
    ARG("-name");
    ARG(c->name);
    /* microvm: ACPI stays on (the Debian kernel finds virtio-mmio devices
     * through it: CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES is off); no option
     * ROMs, no legacy PIC; one ISA serial port for the console. */
    ARG("-M");
    ARG("microvm,x-option-roms=off,pic=off,isa-serial=on,rtc=on,memory-backend=mem");
    /* Guest RAM on a memfd: shmem is not backed by transparent huge
     * pages, so only the 4 KiB pages the guest touches count towards the
     * RSS (anonymous RAM is THP-backed and grows 2 MiB at a time). */
    ARG("-object");
    hv_argv_addf(a, "memory-backend-memfd,id=mem,size=%uM", c->memory_mib);
    ARG("-accel");
    ARG(accel == HV_ACCEL_KVM ? "kvm" : "tcg,tb-size=16");
    ARG("-cpu");
    ARG(accel == HV_ACCEL_KVM ? "host" : "max");
    ARG("-m");
    hv_argv_addf(a, "%u", c->memory_mib);
    ARG("-smp");
    hv_argv_addf(a, "%u", c->vcpus);
    ARG("-nodefaults");
    ARG("-no-user-config");
    ARG("-display");
    ARG("none");
    ARG("-sandbox");
    ARG("on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
    ARG("-kernel");
    ARG(c->kernel);
    ARG("-initrd");
    ARG(c->initrd);
    ARG("-append");
    /* Memory (docs/images.md, "Boot time and memory"): tracefs would
     * instantiate an inode and a dentry for every trace event file at
     * boot (~9 MiB of slab nobody reads in a faultline guest);
     * percpu_alloc=page maps the first per-CPU chunk page by page instead
     * of embedding it in 2 MiB units that are zeroed whole (~5 MiB). */
    fl_buf_puts(&b, "console=ttyS0 quiet panic=-1 mitigations=off cryptomgr.notests "
                    "8250.nr_uarts=1 no_timer_check tsc=reliable rcupdate.rcu_expedited=1 "
                    "percpu_alloc=page initcall_blacklist=tracer_init_tracefs,event_trace_init");
    unsigned long khz = accel == HV_ACCEL_TCG ? host_tsc_khz() : 0;
    if (khz > 100000) {
        fl_buf_printf(&b, " tsc_early_khz=%lu", khz);
    }
    if (c->extra_cmdline && *c->extra_cmdline) {
        fl_buf_printf(&b, " %s", c->extra_cmdline);
    }
    ARGB();
    ARG("-chardev");
    fl_buf_puts(&b, "file,id=con,append=on,path=");
    hv_qemu_optval(&b, c->console_log);
    ARGB();
    ARG("-serial");
    ARG("chardev:con");
    ARG("-chardev");
    ARG("socket,id=qmp,fd=3");
    ARG("-mon");
    ARG("chardev=qmp,mode=control");
    ARG("-chardev");
    ARG("socket,id=agent,fd=4");
    ARG("-device");
    ARG("virtio-serial-device,max_ports=2");
    ARG("-device");
    ARG("virtserialport,chardev=agent,name=" FL_AGENT_PORT_NAME);
    for (size_t i = 0; i < c->n_nics; i++) {
        char mac[18];
        if (c->nics[i].mac) {
            snprintf(mac, sizeof mac, "%s", c->nics[i].mac);
        } else {
            hv_default_mac(c->name, i, mac);
        }
        ARG("-netdev");
        fl_buf_printf(&b, "stream,id=n%zu,server=off,addr.type=unix,addr.path=", i);
        hv_qemu_optval(&b, c->nics[i].socket_path);
        ARGB();
        ARG("-device");
        fl_buf_printf(&b, "virtio-net-device,netdev=n%zu,mac=%s", i, mac);
        ARGB();
    }
    for (size_t i = 0; i < c->n_disks; i++) {
        const struct hv_disk_config *d = &c->disks[i];
        ARG("-blockdev");
        if (d->kind == HV_DISK_NBD) {
            fl_buf_printf(&b, "driver=nbd,node-name=d%zu,server.type=unix,server.path=", i);
            hv_qemu_optval(&b, d->path);
            if (d->export_name && *d->export_name) {
                fl_buf_puts(&b, ",export=");
                hv_qemu_optval(&b, d->export_name);
            }
        } else {
            fl_buf_printf(&b, "driver=file,node-name=f%zu,filename=", i);
            hv_qemu_optval(&b, d->path);
            if (d->read_only) {
                fl_buf_puts(&b, ",read-only=on");
            }
            ARGB();
            ARG("-blockdev");
            fl_buf_printf(&b, "driver=raw,node-name=d%zu,file=f%zu", i, i);
        }
        if (d->read_only) {
            fl_buf_puts(&b, ",read-only=on");
        }
        ARGB();
        ARG("-device");
        fl_buf_printf(&b, "virtio-blk-device,drive=d%zu,serial=fl-d%zu", i, i);
        ARGB();
    }
#undef ARG
#undef ARGB
}
