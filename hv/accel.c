/*
 * Accelerator choice: KVM only when the CPU advertises hardware
 * virtualization (vmx or svm in /proc/cpuinfo flags) AND /dev/kvm opens;
 * /dev/kvm alone is not enough (it exists on this CI machine without
 * vmx/svm, and QEMU would then fail at start).  TCG otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hv/internal.h"

FL_NAME_TABLE(accel_names, HV_ACCELS);

const char *hv_accel_name(enum hv_accel accel)
{
    return FL_NAME_OF(accel_names, accel);
}

bool hv_accel_parse(const char *s, enum hv_accel *out, struct fl_error **errp)
{
    for (size_t i = 0; i < FL_ARRAY_LEN(accel_names); i++) {
        if (!strcmp(s, accel_names[i])) {
            *out = (enum hv_accel)i;
            return true;
        }
    }
    fl_error_setf(errp, EINVAL, "accelerator: '%s' is not one of auto, kvm, tcg", s);
    return false;
}

static bool has_flag(const char *cpuinfo, const char *flag)
{
    for (const char *line = cpuinfo; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > 5 && !strncmp(line, "flags", 5)) {
            const char *colon = memchr(line, ':', len);
            if (colon) {
                const char *p = colon + 1, *stop = line + len;
                size_t fl = strlen(flag);
                while (p < stop) {
                    while (p < stop && *p == ' ') {
                        p++;
                    }
                    const char *w = p;
                    while (p < stop && *p != ' ') {
                        p++;
                    }
                    if ((size_t)(p - w) == fl && !strncmp(w, flag, fl)) {
                        return true;
                    }
                }
            }
            return false; /* the first CPU's flags decide */
        }
        line = end ? end + 1 : NULL;
    }
    return false;
}

enum hv_accel hv_accel_decide(const char *cpuinfo, bool kvm_opens, const char **why)
{
    bool hw = cpuinfo && (has_flag(cpuinfo, "vmx") || has_flag(cpuinfo, "svm"));
    const char *w;
    enum hv_accel a;
    if (hw && kvm_opens) {
        a = HV_ACCEL_KVM;
        w = "KVM: the CPU advertises vmx/svm and /dev/kvm opens";
    } else if (hw) {
        a = HV_ACCEL_TCG;
        w = "TCG: the CPU advertises vmx/svm but /dev/kvm does not open";
    } else {
        a = HV_ACCEL_TCG;
        w = "TCG: the CPU advertises no hardware virtualization (vmx/svm)";
    }
    if (why) {
        *why = w;
    }
    return a;
}

enum hv_accel hv_accel_resolve(enum hv_accel requested, const char **why)
{
    if (requested == HV_ACCEL_AUTO) {
        const char *env = getenv("FAULTLINE_ACCEL");
        enum hv_accel e;
        if (env && *env && hv_accel_parse(env, &e, NULL) && e != HV_ACCEL_AUTO) {
            if (why) {
                *why = "set by FAULTLINE_ACCEL";
            }
            return e;
        }
    } else {
        if (why) {
            *why = "requested explicitly";
        }
        return requested;
    }
    char *cpuinfo = fl_read_file("/proc/cpuinfo", NULL, NULL);
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
        close(fd);
    }
    enum hv_accel a = hv_accel_decide(cpuinfo, fd >= 0, why);
    free(cpuinfo);
    return a;
}
