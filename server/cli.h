/* cli: the `wattline user add` command. */
#ifndef WATTLINE_CLI_H
#define WATTLINE_CLI_H

/* argv holds the options after "user add". Returns the exit status:
 * 0 done (or nothing to do with --if-none), 1 failure, 2 bad usage. */
int cli_user_add(int argc, char **argv);

#endif
