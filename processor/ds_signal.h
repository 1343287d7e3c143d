/*
 * ds_signal.h - SIGINT/SIGTERM turned into a stop request every command polls.
 *
 * The handler only sets a sig_atomic_t; the commands check it in their loops
 * and shut down in order (publish, commit, leave the group). A second signal
 * while stopping exits at once (status 130), for an operator who insists.
 */
#ifndef DS_SIGNAL_H
#define DS_SIGNAL_H

void ds_signals_install(void);
int ds_stop_requested(void);
void ds_request_stop(void);

#endif
