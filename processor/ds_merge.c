/*
 * ds_merge.c - partition rows -> global rows.
 */
#include "ds_merge.h"

#include <stdlib.h>
#include <string.h>

struct ds_merge {
        ds_rows_t *parts;  /* key with partition -> latest value */
        ds_rows_t *global; /* key -> sum over partitions */
};

ds_merge_t *ds_merge_new(void) {
        ds_merge_t *m = calloc(1, sizeof(*m));
        if (!m)
                return NULL;
        m->parts = ds_rows_new(1024);
        m->global = ds_rows_new(1024);
        if (!m->parts || !m->global) {
                ds_merge_destroy(m);
                return NULL;
        }
        return m;
}

void ds_merge_destroy(ds_merge_t *m) {
        if (!m)
                return;
        ds_rows_destroy(m->parts);
        ds_rows_destroy(m->global);
        free(m);
}

int ds_merge_update(ds_merge_t *m, int32_t partition, ds_rowkey_t key, const ds_measures_t *value) {
        key = ds_rowkey_without_partition(key);
        ds_row_t *p = ds_rows_get(m->parts, ds_rowkey_with_partition(key, partition));
        if (!p)
                return -1;
        if (!memcmp(&p->m, value, sizeof(*value)))
                return 0;
        ds_measures_t delta = *value;
        ds_measures_add(&delta, &p->m, -1);
        p->m = *value;
        ds_row_t *g = ds_rows_get(m->global, key);
        if (!g)
                return -1;
        ds_measures_add(&g->m, &delta, 1);
        ds_rows_mark(m->global, g);
        return 0;
}

ds_rows_t *ds_merge_global(ds_merge_t *m) {
        return m->global;
}

size_t ds_merge_memory(const ds_merge_t *m) {
        return sizeof(*m) + ds_rows_memory(m->parts) + ds_rows_memory(m->global);
}
