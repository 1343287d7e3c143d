/*
 * ds_cmd.h - the subcommands of the declstream binary.
 *
 * Each takes the arguments after the command name and returns the process
 * exit status: 0 success, 1 runtime failure, 2 usage or configuration error.
 */
#ifndef DS_CMD_H
#define DS_CMD_H

#include <stdint.h>

int ds_cmd_run(int argc, char **argv);
int ds_cmd_gen(int argc, char **argv);
int ds_cmd_broker(int argc, char **argv);
int ds_cmd_config(int argc, char **argv);
int ds_cmd_top(int argc, char **argv);
int ds_cmd_replay(int argc, char **argv);
int ds_cmd_dump(int argc, char **argv);

/* Argument helpers shared by the commands. */
typedef struct ds_argv {
        int argc, i;
        char **argv;
        const char *cmd;
} ds_argv_t;

/* If argv[i] is `name` (value in the next argument) or `name=value`, stores
 * the value, advances and returns 1; prints an error and returns -1 when the
 * value is missing; returns 0 otherwise. */
int ds_arg_value(ds_argv_t *a, const char *name, const char **value);
/* Parses an integer / double flag value, printing an error naming the flag. */
int ds_arg_i64(const char *cmd, const char *flag, const char *v, int64_t min, int64_t max, int64_t *out);
/* A count: an integer, or one with a k (x1,000) or m (x1,000,000) suffix. */
int ds_arg_count(const char *cmd, const char *flag, const char *v, int64_t min, int64_t max, int64_t *out);
int ds_arg_double(const char *cmd, const char *flag, const char *v, double min, double max, double *out);
/* --gates-file FILE: adds the file's gates (ds_domain_add_gates_file). 0, or
 * -1 after printing "declstream CMD: --gates-file: <error>". */
int ds_arg_gates_file(const char *cmd, const char *path);
/* A -X property=value flag: appends {strdup(property), value} to props
 * (*nprops < max; the caller frees each key), or prints an error naming the
 * command and returns -1. */
struct ds_kv;
int ds_arg_prop(const char *cmd, const char *v, struct ds_kv *props, int *nprops, int max);

#endif
