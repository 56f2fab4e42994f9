/* libFuzzer target: the scenario loader over arbitrary bytes (YAML reader,
 * schema, timeline expansion, nemesis, simulation) and, for inputs that
 * load, the JSON dump.  A fixed seed keeps every run reproducible. */
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "topology/topology.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        fl_log_set_level(FL_LOG_ERROR);
        quiet = 1;
    }
    const uint64_t seed = 1;
    struct fl_error *err = NULL;
    struct topo_scenario *s =
        topo_load_string_seed("fuzz.yaml", (const char *)data, size, &seed, &err);
    if (s) {
        struct fl_buf b = {0};
        topo_dump_json(s, &b);
        fl_buf_free(&b);
        topo_scenario_free(s);
    }
    fl_error_free(err);
    return 0;
}
