/*
 * ds_wire.c - growth of ds_buf_t (the rest is inline in ds_wire.h).
 */
#include "ds_wire.h"

#include <stdio.h>
#include <stdlib.h>

void ds_buf_grow(ds_buf_t *b, size_t n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
                cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
                fprintf(stderr, "declstream: out of memory growing a buffer to %zu bytes\n", cap);
                abort();
        }
        b->p = p;
        b->cap = cap;
}

void ds_buf_free(ds_buf_t *b) {
        free(b->p);
        *b = (ds_buf_t){0};
}
