/* wattline archive --before YYYY-MM [--force]: retires every month before
 * that one now, as the server's schedule does (api/retention.h), while
 * servers run: they hear of the new horizon by NOTIFY. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../api/retention.h"
#include "../base/clock.h"
#include "../base/config.h"
#include "../base/log.h"
#include "../base/month.h"
#include "cli.h"

struct archive_args {
    const char *before;
    bool force;
    char *rest[64]; /* settings flags, passed on to config_parse */
    int nrest;
};

static bool parse_args(int argc, char **argv, struct archive_args *a)
{
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--before") && i + 1 < argc)
            a->before = argv[++i];
        else if (!strcmp(argv[i], "--before"))
            return false;
        else if (!strcmp(argv[i], "--force"))
            a->force = true;
        else if (a->nrest < 64)
            a->rest[a->nrest++] = argv[i];
        else
            return false;
    }
    return a->before != NULL;
}

static const char *env_lookup(const char *name, void *ctx)
{
    (void)ctx;
    return getenv(name);
}

/* Each file written and month dropped, one line on standard output. */
static void print_line(void *ctx, const char *text)
{
    (void)ctx;
    printf("%s\n", text);
    fflush(stdout);
}

int cli_archive(int argc, char **argv)
{
    struct archive_args a = {0};
    if (!parse_args(argc, argv, &a)) {
        fprintf(stderr, "usage: wattline archive --before YYYY-MM [--force]\n");
        return 2;
    }
    /* The current month may be named (everything before it goes), not a
     * later one: that would retire readings still arriving. */
    int before, current = month_of((long long)clock_wall_s());
    char now[MONTH_TEXT_MAX];
    month_format(current, now);
    if (!month_parse(a.before, &before) || before > current) {
        fprintf(stderr,
                "wattline: --before must be a month YYYY-MM no later than the current one (%s)\n",
                now);
        return 2;
    }
    struct config cfg;
    char err[512];
    if (!config_parse(&cfg, env_lookup, NULL, a.nrest, a.rest, err, sizeof err)) {
        fprintf(stderr, "wattline: %s\n", err);
        config_free(&cfg);
        return 2;
    }
    log_setup(cfg.log_level, cfg.log_format);
    struct db_pool_options db = {.url = cfg.database_url,
                                 .size = 1,
                                 .statement_timeout_ms = cfg.statement_timeout_ms,
                                 .connect_timeout_s = 5,
                                 .application_name = "wattline-archive",
                                 .timeout_s = cfg.db_timeout_s};
    struct retention_options ro = {.db = &db,
                                   .archive_dir = cfg.archive_dir,
                                   .force = a.force,
                                   .report = {.line = print_line}};
    bool skipped;
    enum status st = retention_run(&ro, before, &skipped);
    config_free(&cfg);
    if (st != STATUS_OK || skipped) {
        fprintf(stderr, "wattline: archive: %s\n",
                skipped ? "another instance is retiring months now; try again later"
                        : "stopped at the first failure (see above)");
        return 1;
    }
    return 0;
}
