/*
 * ds_replay.h - recorded messages, and replaying them through the worker path.
 *
 * A replay file holds messages as a consumer received them: partition,
 * offset, timestamp, key and value. `declstream gen --file` writes the
 * generator's messages to one (with a truth file), `declstream dump`
 * archives a topic into one, and `declstream replay` feeds one through the
 * processor's own per-message path - ds_step_decode(), ds_step_check(),
 * ds_part_apply() - with the partitions spread over worker threads (each
 * thread owns its partitions: one writer, as in the pipeline), flushes every
 * partition into an outbox each cycle and merges the outboxes on the main
 * thread (ds_publish_cycle) into a sink that discards the rows, or keeps
 * their final values for --output. That measures the processor's ceiling
 * without a broker, and recomputes totals from an archive.
 *
 * File format (all integers little-endian):
 *
 *   header, 16 bytes:  "DSREPLAY" (8 bytes), u32 version (1), u32 flags (0)
 *   then per message:  i32 partition      0..65535
 *                      i64 offset         >= 0
 *                      i64 timestamp      ms since the epoch (-1: none)
 *                      u32 key_len        0xffffffff: null key
 *                      u32 value_len      0xffffffff: null value
 *                      key bytes, value bytes
 *
 * A record header is 28 bytes. A file ends exactly after its last record: a
 * record cut short is an error (a truncated copy), not a shorter file.
 *
 * @locality writer: one thread. A ds_replay_file_t is read-only once opened
 * and may be read by any number of threads.
 */
#ifndef DS_REPLAY_H
#define DS_REPLAY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ds_part.h"
#include "ds_reason.h"

#define DS_REPLAY_MAGIC "DSREPLAY"
#define DS_REPLAY_VERSION 1
#define DS_REPLAY_HEADER 16
#define DS_REPLAY_RECORD_HEADER 28
#define DS_REPLAY_NULL 0xffffffffu
#define DS_REPLAY_MAX_PARTITION 65535
#define DS_REPLAY_MAX_FIELD (64u << 20) /* a key or value larger than 64 MiB marks a corrupt file */

/* ---- writing ------------------------------------------------------------- */

typedef struct ds_replay_writer ds_replay_writer_t;

/* Creates path (written as path.tmp, renamed into place by a successful
 * close, so a file that exists is complete). NULL with errstr on failure. */
ds_replay_writer_t *ds_replay_writer_open(const char *path, char *errstr, size_t errstr_size);

/* Appends one message. key/value NULL: a null key/value (lengths ignored).
 * Returns 0, or -1 with errstr (write error). */
int ds_replay_write(ds_replay_writer_t *w, int32_t partition, int64_t offset, int64_t timestamp, const void *key,
                    size_t key_len, const void *value, size_t value_len, char *errstr, size_t errstr_size);

/* Messages written so far. */
uint64_t ds_replay_writer_count(const ds_replay_writer_t *w);

/* Flushes, closes and renames the file into place; frees w. commit == 0
 * discards the file instead. Returns 0, or -1 with errstr. */
int ds_replay_writer_close(ds_replay_writer_t *w, int commit, char *errstr, size_t errstr_size);

/* ---- reading ------------------------------------------------------------- */

typedef struct ds_replay_msg {
        int32_t partition;
        int64_t offset;
        int64_t timestamp;
        const uint8_t *key; /* NULL for a null key */
        uint32_t key_len;
        const uint8_t *value; /* NULL for a null value */
        uint32_t value_len;
} ds_replay_msg_t;

typedef struct ds_replay_file ds_replay_file_t;

/* Maps the file and checks all of it (magic, version, every record's bounds
 * and fields), so that replaying it cannot fail or read out of bounds.
 * NULL with errstr naming the file, the record and the byte offset of the
 * problem. */
ds_replay_file_t *ds_replay_file_open(const char *path, char *errstr, size_t errstr_size);
void ds_replay_file_close(ds_replay_file_t *f);

uint64_t ds_replay_file_count(const ds_replay_file_t *f);
size_t ds_replay_file_bytes(const ds_replay_file_t *f);
/* Largest partition number in the file (-1 when empty). */
int32_t ds_replay_file_max_partition(const ds_replay_file_t *f);

/* Iterates: *pos = 0 first; returns 1 with the message at *pos and advances
 * *pos, or 0 at the end. Strings point into the mapped file. */
int ds_replay_file_next(const ds_replay_file_t *f, size_t *pos, ds_replay_msg_t *m);

/* ---- replaying ----------------------------------------------------------- */

/* What a replay's merged rows go to. */
typedef enum {
        DS_REPLAY_SINK_NULL = 0, /* rows are merged and handed to a sink that drops them */
        DS_REPLAY_SINK_KEEP,     /* the latest value of every row and top list is kept (ds_replay_write_totals) */
        DS_REPLAY_SINK_PARTIAL,  /* the processing role alone, as `declstream run --role process`: the
                                  * workers encode every cycle's changed rows as the partial batches the
                                  * pipeline produces (ds_partial.h) and write each partition's changelog
                                  * records (deltas, snapshots), and main hands the batches on and adds a
                                  * changed STATUS per partition; all are dropped. No merge (that is the
                                  * merge role's work, downstream of the partial topic) */
} ds_replay_sink_t;

typedef struct ds_replay_opts {
        const char *schema_dir; /* NULL: the built-in schemas/ directory */
        int threads;            /* worker threads, >= 1 */
        int repeat;             /* passes over the file, >= 1 */
        int warmup;             /* passes replayed before those, with the clock stopped (>= 0): the state
                                 * they leave - tables grown, memory the allocator already holds - is
                                 * where the measured passes start; nothing they do is counted */
        int heading_digits;     /* 2, 4, 6, 8 */
        int64_t cycle_ms;       /* flush + merge + publish every cycle_ms (the pipeline's commit.interval.ms) */
        ds_replay_sink_t sink;
        int presize;            /* size each partition's ledger for its messages (of every pass, warmup
                                 * included) and fault it in before the clock starts: the steady state,
                                 * where tables have reached their size */
        int check_partials;     /* SINK_PARTIAL: decode every batch back, fail on one the decoder refuses,
                                 * and keep each partition's last GATE TOTAL share (the result's
                                 * partial_total_declarations: the state's, so the warm-up's passes
                                 * are in it); the pipeline does not, so it is off where the
                                 * processing role's cost is measured */
        ds_part_cfg_t part;     /* retentions etc. (ds_part_cfg_default) */
} ds_replay_opts_t;

/* Defaults: 1 thread, 1 pass, 4 heading digits, 1 s cycles, null sink. */
void ds_replay_opts_default(ds_replay_opts_t *o);

typedef struct ds_replay_result {
        uint64_t messages;      /* messages replayed (all passes) */
        uint64_t declarations;  /* messages that decoded and validated: applied to the ledger */
        uint64_t dead_lettered; /* messages that did not */
        uint64_t dlq[DS_DLQ__CNT];
        uint64_t outcome[DS_EV__CNT];
        uint64_t bytes;      /* value bytes replayed */
        uint64_t cycles;     /* flush/merge/publish cycles */
        uint64_t rows_out;   /* rows handed to the sink */
        int threads;
        int partitions;      /* distinct partitions in the file */
        double seconds;      /* wall time from the first message to the last cycle published */
        double cpu_seconds;  /* user + system CPU of the process over the same span */
        double main_cpu_seconds; /* of which the main thread's (flush requests, the statuses or the
                                  * merging, publishing); the rest is the workers' */
        double tail_seconds;     /* of seconds, from the last worker's finish to the end: the rest of
                                  * any cycle under way, then the final one - the workers' last
                                  * flush (encoding what changed since the cycle before), main
                                  * handing it on (or merging it) - a tail a processor that runs on
                                  * does not have, so runs
                                  * should be many cycles long (bench/HOTPATH.md, fifteenth round) */
        size_t state_bytes;  /* ledger + aggregate bytes of every partition at the end */
        size_t ledger_bytes; /* of which the ledgers' */
        uint64_t ledger_entries;
        uint64_t rows;       /* aggregate rows held by the partitions at the end */
        /* DS_REPLAY_SINK_PARTIAL: partial messages encoded (batches of rows and statuses, with as
         * many partial partitions as input partitions), the rows in them, their bytes, and the
         * declarations of every partition's last GATE TOTAL share summed over partitions and gates -
         * read back from the encoded bytes (ds_partial_rows_next), so it checks the partial rows
         * themselves: it equals the declarations applied net of cancellations */
        uint64_t partials;
        uint64_t partial_rows;
        uint64_t partial_bytes;
        int64_t partial_total_declarations; /* -1 unless check_partials */
        /* DS_REPLAY_SINK_PARTIAL: changelog records (deltas, snapshots) the workers wrote, as the
         * processing role's do each cycle, and dropped */
        uint64_t changelog_records;
        uint64_t changelog_bytes;
} ds_replay_result_t;

typedef struct ds_replay ds_replay_t;

/* Prepares a replay of f (loads the schemas, creates the partitions).
 * NULL with errstr. f must outlive the replay. */
ds_replay_t *ds_replay_new(const ds_replay_file_t *f, const ds_replay_opts_t *o, char *errstr, size_t errstr_size);
void ds_replay_destroy(ds_replay_t *r);

/* Runs it (once per ds_replay_t). Returns 0, or -1 with errstr (out of
 * memory, a thread could not start). */
int ds_replay_run(ds_replay_t *r, ds_replay_result_t *res, char *errstr, size_t errstr_size);

/* With DS_REPLAY_SINK_KEEP: writes the final value of every published row
 * as one JSON object per line ({"key", "dimension", "window", "window_start",
 * the measures, "distinct_declarants", "distinct_vehicles"}), then one line
 * per top-headings list ({"top": "<gate>|DAY|<start>", "headings": [[heading,
 * value, declarations, items, weight], ...]}). Rows sorted by key. */
int ds_replay_write_totals(const ds_replay_t *r, FILE *out, char *errstr, size_t errstr_size);

/* With DS_REPLAY_SINK_KEEP: calls fn for every GATE TOTAL row (the per-gate
 * table). */
typedef void (*ds_replay_gate_fn)(void *ctx, const char *gate, const ds_measures_t *m);
void ds_replay_gate_totals(const ds_replay_t *r, ds_replay_gate_fn fn, void *ctx);

#endif
