/*
 * ds_reason.c - the tables behind ds_reason.h.
 */
#include "ds_reason.h"

#include <string.h>

static const char *const dlq_codes[DS_DLQ__CNT] = {
    [DS_DLQ_NONE] = "none",
#define DS__X(name, code, text) [DS_DLQ_##name] = code,
    DS_DLQ_REASONS(DS__X)
#undef DS__X
};

static const char *const dlq_texts[DS_DLQ__CNT] = {
    [DS_DLQ_NONE] = "no error",
#define DS__X(name, code, text) [DS_DLQ_##name] = text,
    DS_DLQ_REASONS(DS__X)
#undef DS__X
};

static const char *const ev_codes[DS_EV__CNT] = {
#define DS__X(name, code, text) [DS_EV_##name] = code,
    DS_EVENT_OUTCOMES(DS__X)
#undef DS__X
};

static const char *const ev_texts[DS_EV__CNT] = {
#define DS__X(name, code, text) [DS_EV_##name] = text,
    DS_EVENT_OUTCOMES(DS__X)
#undef DS__X
};

const char *ds_dlq_code(ds_dlq_reason_t r) {
        return (unsigned)r < DS_DLQ__CNT ? dlq_codes[r] : "unknown";
}

const char *ds_dlq_text(ds_dlq_reason_t r) {
        return (unsigned)r < DS_DLQ__CNT ? dlq_texts[r] : "unknown reason";
}

ds_dlq_reason_t ds_dlq_from_code(const char *code) {
        for (int i = 1; i < DS_DLQ__CNT; i++)
                if (!strcmp(dlq_codes[i], code))
                        return (ds_dlq_reason_t)i;
        return DS_DLQ_NONE;
}

const char *ds_event_code(ds_event_outcome_t o) {
        return (unsigned)o < DS_EV__CNT ? ev_codes[o] : "unknown";
}

const char *ds_event_text(ds_event_outcome_t o) {
        return (unsigned)o < DS_EV__CNT ? ev_texts[o] : "unknown outcome";
}
