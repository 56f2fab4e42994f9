/*
 * The guest agent binary and the guest init script, embedded into the
 * library so the `faultline` binary alone can build images.  Paths come
 * from hv/CMakeLists.txt (FL_AGENT_BIN, FL_INIT_SCRIPT).
 */
#include <stdint.h>

#define FL_STR_(x) #x
#define FL_STR(x)  FL_STR_(x)

__asm__(
    ".section .rodata,\"a\"\n"
    ".balign 16\n"
    ".globl hv_agent_blob\n.hidden hv_agent_blob\nhv_agent_blob:\n"
    ".incbin " FL_STR(
        FL_AGENT_BIN) "\n"
                      ".globl hv_agent_blob_end\n.hidden hv_agent_blob_end\nhv_agent_blob_end:\n"
                      ".balign 16\n"
                      ".globl hv_init_blob\n.hidden hv_init_blob\nhv_init_blob:\n"
                      ".incbin " FL_STR(FL_INIT_SCRIPT) "\n"
                                                        ".globl hv_init_blob_end\n.hidden "
                                                        "hv_init_blob_end\nhv_init_blob_end:\n"
                                                        ".previous\n");
