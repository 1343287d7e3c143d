/*
 * ds_window.c - window defaults (the arithmetic is inline in ds_window.h).
 */
#include "ds_window.h"

void ds_window_cfg_default(ds_window_cfg_t *cfg) {
        cfg->retention_ms[DS_WIN_TOTAL] = 0;
        cfg->retention_ms[DS_WIN_MINUTE] = 3 * DS_HOUR_MS;
        cfg->retention_ms[DS_WIN_HOUR] = 3 * DS_DAY_MS;
        cfg->retention_ms[DS_WIN_DAY] = 400 * DS_DAY_MS;
}
