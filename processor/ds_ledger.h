/*
 * ds_ledger.h - the latest applied version of every declaration of a partition.
 *
 * Totals must equal the sum, over declaration ids, of the latest
 * non-cancelled version of each. Since each event carries the whole
 * declaration, applying an amendment means retracting what the previous
 * version contributed and adding the new one; the ledger remembers, per id,
 * the version applied and exactly what it contributed (gate, flow, event
 * time, one line per heading).
 *
 * Rules (ds_ledger_apply):
 *   unknown id, NEW or AMEND  -> add it (AMEND for an unknown id: upsert)
 *   unknown id, CANCEL        -> remember it as cancelled, add nothing
 *   known, cancelled          -> ignored (later events for a cancelled id)
 *   version <= applied        -> ignored (redelivery, stale amendment)
 *   higher version, CANCEL    -> retract the previous contribution
 *   higher version, otherwise -> retract the previous, add the new
 *
 * Retention: an entry whose latest version is older than the horizon (the
 * partition's event-time watermark minus ledger.retention.ms) is forgotten.
 * The rule is applied when the id is looked up, so the outcome depends only
 * on the partition's event order; ds_ledger_expire() reclaims the memory of
 * such entries in the background. Past retention a declaration is unknown
 * again: a later event for it is applied as an upsert, without retracting the
 * forgotten contribution, and is counted as upsert_expired_id.
 *
 * Memory: 32 bytes per slot in the hash table, which doubles when its load
 * passes 0.7 (so 46 to 91 bytes per id, depending on where it is between
 * doublings), plus 24 bytes per distinct heading of the declaration (in
 * chunks of 1 Ki lines doubling to 64 Ki, so an empty or small ledger holds
 * tens of KiB, not 1.5 MiB): 118 to 170 bytes for a typical 3-heading declaration,
 * 1.2 to 1.7 GiB for 10 million. ds_ledger_memory() reports the real figure.
 *
 * @locality the worker thread that owns the partition.
 */
#ifndef DS_LEDGER_H
#define DS_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "ds_decl.h"
#include "ds_reason.h"

typedef struct ds_ledger ds_ledger_t;

ds_ledger_t *ds_ledger_new(uint32_t initial_entries);
void ds_ledger_destroy(ds_ledger_t *l);

/* What applying an event requires of the aggregates. */
typedef struct ds_ledger_effect {
        int retract;     /* retract *old (filled when set) */
        int add;         /* add the event's contribution */
        ds_contrib_t *old;
} ds_ledger_effect_t;

/* Applies event c; entries older than horizon_ms count as forgotten
 * (INT64_MIN: no horizon). Fills eff (eff->old must point to caller scratch
 * space, written only when eff->retract is set). Returns the outcome, or -1
 * on out-of-memory (nothing changed). */
int ds_ledger_apply(ds_ledger_t *l, const ds_contrib_t *c, int64_t horizon_ms, ds_ledger_effect_t *eff);

/* Prefetches the slot where id's lookup starts (one cache miss per event
 * in a large ledger), so that other work can overlap it. */
void ds_ledger_prefetch(const ds_ledger_t *l, uint64_t id);

/* Forgets up to max_scan slots' worth of entries whose declared_at < horizon,
 * continuing where the previous call stopped. Returns the number forgotten. */
uint64_t ds_ledger_expire(ds_ledger_t *l, int64_t horizon_ms, uint32_t max_scan);

/* One declaration as the ledger keeps it (for checkpoints and restore). */
typedef struct ds_ledger_entry {
        uint64_t id;
        int64_t declared_at;
        int32_t version;
        uint16_t gate;
        uint8_t flow;
        uint8_t cancelled;
        uint32_t nlines;
        const ds_line_t *lines; /* borrowed: valid until the ledger changes */
} ds_ledger_entry_t;

/* Calls fn for every entry (order unspecified). */
typedef int (*ds_ledger_fn)(void *ctx, const ds_ledger_entry_t *e);
int ds_ledger_foreach(const ds_ledger_t *l, ds_ledger_fn fn, void *ctx);

/* Starts remembering which entries change (off by default: only a ledger
 * whose changes are written to a changelog pays for it). */
void ds_ledger_track_changes(ds_ledger_t *l);

/* Calls fn for every entry changed since the last call (applied, amended,
 * cancelled), then forgets the changes. Entries forgotten past retention are
 * not reported: a restored ledger forgets them again by the same rule. */
int ds_ledger_take_changes(ds_ledger_t *l, ds_ledger_fn fn, void *ctx);

/* Inserts or replaces an entry as given (restore). 0, or -1 on OOM. */
int ds_ledger_put(ds_ledger_t *l, const ds_ledger_entry_t *e);

uint64_t ds_ledger_count(const ds_ledger_t *l);
size_t ds_ledger_memory(const ds_ledger_t *l);

#endif
