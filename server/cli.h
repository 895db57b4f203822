/* cli: the `wattline user add` and `wattline archive` commands. */
#ifndef WATTLINE_CLI_H
#define WATTLINE_CLI_H

/* argv holds the options after "user add". Returns the exit status:
 * 0 done (or nothing to do with --if-none), 1 failure, 2 bad usage. */
int cli_user_add(int argc, char **argv);

/* argv holds the options after "archive": --before YYYY-MM [--force].
 * Returns the exit status: 0 every month before it retired, 1 failure (or
 * another instance was at it), 2 bad usage. */
int cli_archive(int argc, char **argv);

#endif
