/*
 * ds_signal.c - stop requests.
 */
#include "ds_signal.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop;

static void on_signal(int sig) {
        (void)sig;
        if (g_stop) {
                static const char msg[] = "declstream: second signal, exiting now\n";
                ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
                (void)w;
                _exit(130);
        }
        g_stop = 1;
}

void ds_signals_install(void) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
}

int ds_stop_requested(void) {
        return g_stop;
}

void ds_request_stop(void) {
        g_stop = 1;
}
