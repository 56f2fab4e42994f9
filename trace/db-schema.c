/*
 * Every SQL text the run database writer runs: the schema (tables, then
 * the query indexes created at close), one statement per record type, and
 * the epoch shift.  docs/run-database.md documents the schema; a change
 * here is a change of the file format (TRACE_SCHEMA_VERSION).
 */
#include "trace/db-internal.h"

const char trace_schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);\n"
    "CREATE TABLE IF NOT EXISTS run(\n"
    "  id INTEGER PRIMARY KEY CHECK (id = 1), scenario_name TEXT, scenario_path TEXT,\n"
    "  scenario_text TEXT, seed TEXT, faultline_version TEXT, host TEXT, accel TEXT,\n"
    "  started_wall_ns INTEGER, epoch_mono_ns INTEGER, clock_offset_ns INTEGER,\n"
    "  ended_ns INTEGER,\n"
    "  verdict TEXT, verdict_detail TEXT);\n"
    "INSERT OR IGNORE INTO run(id) VALUES (1);\n"
    "CREATE TABLE IF NOT EXISTS nodes(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);\n"
    "CREATE TABLE IF NOT EXISTS networks(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);\n"
    "CREATE TABLE IF NOT EXISTS nics(id INTEGER PRIMARY KEY,\n"
    "  node_id INTEGER NOT NULL REFERENCES nodes(id),\n"
    "  network_id INTEGER REFERENCES networks(id), name TEXT NOT NULL, mac TEXT,\n"
    "  UNIQUE (node_id, name));\n"
    "CREATE TABLE IF NOT EXISTS links(id INTEGER PRIMARY KEY,\n"
    "  network_id INTEGER REFERENCES networks(id),\n"
    "  src_node_id INTEGER NOT NULL REFERENCES nodes(id),\n"
    "  dst_node_id INTEGER NOT NULL REFERENCES nodes(id),\n"
    "  UNIQUE (network_id, src_node_id, dst_node_id));\n"
    "CREATE TABLE IF NOT EXISTS link_params(link_id INTEGER NOT NULL REFERENCES links(id),\n"
    "  t_ns INTEGER, params TEXT NOT NULL);\n"
    "CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, t_ns INTEGER, end_ns INTEGER,\n"
    "  kind TEXT NOT NULL, node_id INTEGER REFERENCES nodes(id), detail TEXT);\n"
    "CREATE TABLE IF NOT EXISTS checks(id INTEGER PRIMARY KEY, name TEXT NOT NULL,\n"
    "  node_id INTEGER REFERENCES nodes(id), command TEXT, exit_status INTEGER,\n"
    "  stdout TEXT, stderr TEXT, passed INTEGER NOT NULL, start_ns INTEGER, end_ns INTEGER);\n"
    "CREATE TABLE IF NOT EXISTS frames(id INTEGER PRIMARY KEY, sent_ns INTEGER NOT NULL,\n"
    "  delivered_ns INTEGER, link_id INTEGER NOT NULL REFERENCES links(id),\n"
    "  src_nic_id INTEGER REFERENCES nics(id), dst_nic_id INTEGER REFERENCES nics(id),\n"
    "  size INTEGER NOT NULL, hash INTEGER NOT NULL, fate TEXT NOT NULL, reason TEXT,\n"
    "  copy INTEGER NOT NULL, reordered INTEGER NOT NULL, corrupt_offset INTEGER,\n"
    "  corrupt_mask INTEGER, pcap_index INTEGER);\n"
    "CREATE TABLE IF NOT EXISTS disks(id INTEGER PRIMARY KEY,\n"
    "  node_id INTEGER NOT NULL REFERENCES nodes(id), name TEXT NOT NULL,\n"
    "  size_bytes INTEGER, UNIQUE (node_id, name));\n"
    "CREATE TABLE IF NOT EXISTS ios(id INTEGER PRIMARY KEY,\n"
    "  disk_id INTEGER NOT NULL REFERENCES disks(id), op TEXT NOT NULL,\n"
    "  offset INTEGER NOT NULL, length INTEGER NOT NULL, submit_ns INTEGER NOT NULL,\n"
    "  complete_ns INTEGER, result INTEGER NOT NULL, fault TEXT NOT NULL, fua INTEGER NOT NULL);\n"
    "CREATE TABLE IF NOT EXISTS crashes(id INTEGER PRIMARY KEY,\n"
    "  disk_id INTEGER NOT NULL REFERENCES disks(id), t_ns INTEGER, policy TEXT);\n"
    "CREATE TABLE IF NOT EXISTS crash_writes(crash_id INTEGER NOT NULL REFERENCES crashes(id),\n"
    "  io_id INTEGER NOT NULL REFERENCES ios(id), outcome TEXT NOT NULL,\n"
    "  kept_bytes INTEGER NOT NULL);\n"
    "CREATE TABLE IF NOT EXISTS host_errors(id INTEGER PRIMARY KEY, t_ns INTEGER,\n"
    "  event_id INTEGER REFERENCES events(id), node_id INTEGER REFERENCES nodes(id),\n"
    "  disk_id INTEGER REFERENCES disks(id), what TEXT NOT NULL, name TEXT, path TEXT,\n"
    "  errnum INTEGER NOT NULL, errname TEXT NOT NULL, message TEXT);\n"
    "CREATE TABLE IF NOT EXISTS rr_segments(node_id INTEGER NOT NULL REFERENCES nodes(id),\n"
    "  segment INTEGER NOT NULL, start_ns INTEGER, end_ns INTEGER, ended TEXT NOT NULL,\n"
    "  icount INTEGER, UNIQUE (node_id, segment));\n"
    "CREATE VIEW IF NOT EXISTS frames_named AS SELECT f.*, sn.name AS src_node,\n"
    "  dn.name AS dst_node, nw.name AS network,\n"
    "  f.delivered_ns - f.sent_ns AS delay_ns\n"
    "  FROM frames f JOIN links l ON l.id = f.link_id\n"
    "  JOIN nodes sn ON sn.id = l.src_node_id JOIN nodes dn ON dn.id = l.dst_node_id\n"
    "  LEFT JOIN networks nw ON nw.id = l.network_id;\n"
    "CREATE VIEW IF NOT EXISTS ios_named AS SELECT i.*, n.name AS node, d.name AS disk,\n"
    "  i.complete_ns - i.submit_ns AS latency_ns\n"
    "  FROM ios i JOIN disks d ON d.id = i.disk_id JOIN nodes n ON n.id = d.node_id;\n";

const char trace_index_sql[] =
    "CREATE INDEX IF NOT EXISTS frames_by_link_time ON frames(link_id, sent_ns);\n"
    "CREATE INDEX IF NOT EXISTS frames_by_time ON frames(sent_ns);\n"
    "CREATE INDEX IF NOT EXISTS frames_by_fate ON frames(fate, reason);\n"
    "CREATE INDEX IF NOT EXISTS ios_by_disk_time ON ios(disk_id, submit_ns);\n"
    "CREATE INDEX IF NOT EXISTS events_by_time ON events(t_ns);\n"
    "CREATE INDEX IF NOT EXISTS link_params_by_link ON link_params(link_id, t_ns);\n"
    "CREATE INDEX IF NOT EXISTS crash_writes_by_crash ON crash_writes(crash_id, io_id);\n";

const char *const trace_insert_sql[REC_TYPE_COUNT] = {
    [REC_NODE] = "INSERT INTO nodes(id, name) VALUES (?1, ?2)",
    [REC_NETWORK] = "INSERT INTO networks(id, name) VALUES (?1, ?2)",
    [REC_NIC] = "INSERT INTO nics(id, node_id, network_id, name, mac) VALUES (?1,?2,?3,?4,?5)",
    [REC_LINK] = "INSERT INTO links(id, network_id, src_node_id, dst_node_id) VALUES (?1,?2,?3,?4)",
    [REC_DISK] = "INSERT INTO disks(id, node_id, name, size_bytes) VALUES (?1,?2,?3,?4)",
    [REC_RUN_BEGIN] = "UPDATE run SET scenario_name=?1, scenario_path=?2, scenario_text=?3,"
                      " faultline_version=?4, host=?5, accel=?6, seed=?7, started_wall_ns=?8"
                      " WHERE id = 1",
    [REC_RUN_END] = "UPDATE run SET verdict=?1, verdict_detail=?2, ended_ns=?3 WHERE id = 1",
    [REC_LINK_PARAMS] = "INSERT INTO link_params(link_id, t_ns, params) VALUES (?1,?2,?3)",
    [REC_EVENT] = "INSERT INTO events(id, t_ns, kind, node_id, detail) VALUES (?1,?2,?3,?4,?5)",
    [REC_EVENT_END] = "UPDATE events SET end_ns = ?2 WHERE id = ?1",
    [REC_CHECK] = "INSERT INTO checks(name, node_id, command, exit_status, stdout, stderr,"
                  " passed, start_ns, end_ns) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
    [REC_FRAME] = "INSERT INTO frames(sent_ns, delivered_ns, link_id, src_nic_id, dst_nic_id,"
                  " size, hash, fate, reason, copy, reordered, corrupt_offset, corrupt_mask,"
                  " pcap_index) SELECT * FROM trace_frame_batch",
    [REC_IO] = "INSERT INTO ios(id, disk_id, op, offset, length, submit_ns, complete_ns, result,"
               " fault, fua) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
    [REC_CRASH] = "INSERT INTO crashes(id, disk_id, t_ns, policy) VALUES (?1,?2,?3,?4)",
    [REC_CRASH_WRITE] = "INSERT INTO crash_writes(crash_id, io_id, outcome, kept_bytes)"
                        " VALUES (?1,?2,?3,?4)",
    [REC_HOST_ERROR] =
        "INSERT INTO host_errors(id, t_ns, event_id, node_id, disk_id, what, name,"
        " path, errnum, errname, message) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)",
    [REC_RR_SEGMENT] = "INSERT OR REPLACE INTO rr_segments(node_id, segment, start_ns, end_ns,"
                       " ended, icount) VALUES (?1,?2,?3,?4,?5,?6)",
    [REC_EPOCH] = NULL,
};

/* Time columns shifted when the epoch changes. */
const char trace_epoch_shift_sql[] =
    "UPDATE frames SET sent_ns = sent_ns + ?1, delivered_ns = delivered_ns + ?1;"
    "UPDATE ios SET submit_ns = submit_ns + ?1, complete_ns = complete_ns + ?1;"
    "UPDATE events SET t_ns = t_ns + ?1, end_ns = end_ns + ?1;"
    "UPDATE link_params SET t_ns = t_ns + ?1;"
    "UPDATE checks SET start_ns = start_ns + ?1, end_ns = end_ns + ?1;"
    "UPDATE crashes SET t_ns = t_ns + ?1;"
    "UPDATE host_errors SET t_ns = t_ns + ?1;"
    "UPDATE rr_segments SET start_ns = start_ns + ?1, end_ns = end_ns + ?1;"
    "UPDATE run SET ended_ns = ended_ns + ?1;";
