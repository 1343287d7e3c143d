/*
 * ds_step.h - the per-message hot path, shared by the processor's workers
 * (ds_pipeline.c) and replay (ds_replay.c): schema id -> decode -> validate
 * -> key check. What happens next (dead letter, or ds_part_apply() into the
 * partition's tables) is the caller's.
 *
 * Inline so that the worker loop compiles to one straight path; nothing here
 * allocates, locks or makes a syscall once the writer schema's codec is
 * compiled (the first message of each new schema id).
 *
 * @locality any thread; decl and contrib are the caller's scratch.
 */
#ifndef DS_STEP_H
#define DS_STEP_H

#include <string.h>

#include "ds_codec.h"
#include "ds_common.h"
#include "ds_schemas.h"
#include "ds_validate.h"

/* Resolves the writer schema and decodes value into decl (strings point into
 * value). rs->schema_id is set whenever the id could be read (for the
 * dead-letter header), else -1. */
static inline ds_dlq_reason_t ds_step_decode(const ds_schemas_t *schemas, const uint8_t *value, size_t len,
                                             ds_decl_t *decl, ds_resolved_t *rs) {
        ds_dlq_reason_t r = ds_schemas_resolve(schemas, value, len, rs);
        if (DS_LIKELY(!r))
                r = ds_codec_decode(rs->codec, rs->body, rs->body_len, decl);
        return r;
}

/* Validates decl into contrib, and checks that the message key is the
 * declaration id: it is what keeps every event of a declaration in one
 * partition, in order. */
static inline ds_dlq_reason_t ds_step_check(const ds_decl_t *decl, int heading_digits, const void *key, size_t klen,
                                            ds_contrib_t *contrib) {
        ds_dlq_reason_t r = ds_validate(decl, heading_digits, contrib);
        if (DS_LIKELY(!r) &&
            DS_UNLIKELY(klen != decl->declaration_id.len || (klen && memcmp(key, decl->declaration_id.p, klen))))
                r = DS_DLQ_BAD_KEY;
        return r;
}

/* One message decoded and validated ahead of its apply. The worker loops
 * (ds_pipeline.c, ds_replay.c) keep two and alternate: message i + 1 is
 * decoded, and the load of its ledger slot started (ds_part_prefetch()),
 * before message i is applied, so that the ledger's cache miss - the largest
 * table, hundreds of MB, one random slot per message - has message i's
 * apply to complete in, not just the hashing of one declaration's rows
 * (bench/HOTPATH.md, ninth round). Decoding and
 * validating change no state, so doing them one message early changes
 * nothing but the order of the loads; what a message does to the state
 * (apply or dead letter, its offset) still happens in input order. */
typedef struct ds_step_ahead {
        ds_decl_t decl; /* strings point into the message (or Avro C's value): read only while preparing */
        ds_contrib_t contrib; /* self-contained: what the apply reads */
        ds_resolved_t rs;
        ds_dlq_reason_t why;
} ds_step_ahead_t;

#endif
