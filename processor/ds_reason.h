/*
 * ds_reason.h - why a message was dead-lettered or an event ignored.
 *
 * One table (libuv's UV_ERRNO_MAP shape) makes the enum, the stable code
 * written into the dead-letter headers and metric labels, and the human text.
 * Codes are part of the contract with customs IT: never renumber or rename a
 * code, only append.
 */
#ifndef DS_REASON_H
#define DS_REASON_H

/* Dead-letter reasons: the message does not become part of any total. */
#define DS_DLQ_REASONS(X)                                                          \
        X(EMPTY, "empty", "empty message")                                         \
        X(BAD_MAGIC, "bad_magic", "wrong magic byte (expected 0: Confluent wire format)") \
        X(SHORT_HEADER, "short_header", "message shorter than the 5-byte wire header") \
        X(UNKNOWN_SCHEMA, "unknown_schema", "unknown schema id")                   \
        X(INCOMPATIBLE_SCHEMA, "incompatible_schema", "writer schema not compatible with the reader schema") \
        X(TRUNCATED, "truncated", "Avro data ends before the record does")        \
        X(MALFORMED, "malformed", "malformed Avro data (bad varint or length or union or enum index)") \
        X(TRAILING_BYTES, "trailing_bytes", "bytes left over after the record")    \
        X(BAD_ID, "bad_declaration_id", "declaration_id is not 12 ASCII digits")   \
        X(UNKNOWN_GATE, "unknown_gate", "gate_code is not a known border gate")    \
        X(BAD_HS_CODE, "bad_hs_code", "hs_code is not 8 ASCII digits")             \
        X(NO_ITEMS, "no_items", "declaration has no items")                        \
        X(TOO_MANY_ITEMS, "too_many_items", "more than 50 items (the VNACCS limit per declaration)") \
        X(NEGATIVE_WEIGHT, "negative_weight", "gross_weight_g is negative")        \
        X(NEGATIVE_VALUE, "negative_value", "customs_value_usd_cents is negative") \
        X(OVERFLOW, "overflow", "sum of item values or weights overflows 64 bits") \
        X(NEGATIVE_VERSION, "negative_version", "version is negative")                 \
        X(BAD_KEY, "bad_key", "message key is not the declaration_id (events of one declaration must share a key)") \
        X(INVALID_UTF8, "invalid_utf8", "a string field is not valid UTF-8")             \
        X(REGISTRY_UNAVAILABLE, "registry_unavailable", "the schema registry could not be reached to resolve the schema id")

typedef enum {
        DS_DLQ_NONE = 0,
#define DS__X(name, code, text) DS_DLQ_##name,
        DS_DLQ_REASONS(DS__X)
#undef DS__X
        DS_DLQ__CNT
} ds_dlq_reason_t;

/* Events that are valid but change nothing, or change totals in a way that
 * operators want counted (ledger and window decisions). */
#define DS_EVENT_OUTCOMES(X)                                                       \
        X(APPLIED_NEW, "applied_new", "new declaration added")                    \
        X(APPLIED_AMEND, "applied_amend", "amendment replaced the previous version") \
        X(APPLIED_CANCEL, "applied_cancel", "cancellation retracted the declaration") \
        X(UPSERT_UNKNOWN, "upsert_unknown_id", "AMEND/CANCEL for an id never seen, applied as its current state") \
        X(IGNORED_STALE, "ignored_stale_version", "version not higher than the one applied (redelivery or stale amendment)") \
        X(IGNORED_CANCELLED, "ignored_after_cancel", "event for a declaration already cancelled")      \
        X(UPSERT_EXPIRED, "upsert_expired_id", "event for a declaration forgotten past ledger.retention.ms, applied as an upsert")

typedef enum {
#define DS__X(name, code, text) DS_EV_##name,
        DS_EVENT_OUTCOMES(DS__X)
#undef DS__X
        DS_EV__CNT
} ds_event_outcome_t;

/* Stable code ("truncated") and human text of a reason. */
const char *ds_dlq_code(ds_dlq_reason_t r);
const char *ds_dlq_text(ds_dlq_reason_t r);
/* DS_DLQ_NONE if code is not a known reason code. */
ds_dlq_reason_t ds_dlq_from_code(const char *code);

const char *ds_event_code(ds_event_outcome_t o);
const char *ds_event_text(ds_event_outcome_t o);

#endif
