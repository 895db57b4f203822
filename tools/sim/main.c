/*
 * wattline-sim: one or many simulated smart meters posting readings to a
 * Wattline server. See usage() for the command line; the modules:
 *   csv, profile, source   where readings come from
 *   schedule               when they are due and what value goes out
 *   spool                  the file that keeps them until acknowledged
 *   client, retry          the HTTP exchange and the retry policy
 *   meter, run             one device's bookkeeping, the event loop
 *   devices, progress      the gateway's device list, what people see
 *   broker, link,          --amqp and --mqtt: names and bodies, the connection,
 *   broker_run             the loop that publishes instead of POSTing
 *   command, relay,        --commands: what a command asks and the answer, the
 *   commander              register while the relay is off, the HTTP long-poll
 */
#define _POSIX_C_SOURCE 200809L

#include "broker_run.h"
#include "devices.h"
#include "meter.h"
#include "progress.h"
#include "run.h"
#include "timeutil.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum exit_code {
    EXIT_DONE = 0,
    EXIT_BROKEN = 1,
    EXIT_USAGE = 2,
    EXIT_REFUSED = 3,
};

#define DEFAULT_SPOOL     "wattline-sim.spool"
#define DEFAULT_SPOOL_DIR "wattline-sim-spool"
#define FUTURE_LIMIT_US   (5 * US_PER_MIN)

struct options {
    const char *url;
    const char *token;
    const char *token_file;
    const char *csv;
    const char *profile;
    const char *spool;
    const char *devices;
    const char *print;
    const char *amqp;
    const char *mqtt;
    struct broker_device device; /* --device-id or --serial */
    uint64_t seed;
    bool quiet;
    bool commands;
    size_t max_connections;
    struct meter_settings set;
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int signo)
{
    stop_signal = signo;
}

static void usage(FILE *out)
{
    fputs(
        "Usage: wattline-sim --url URL (--token T | --token-file F) [--csv FILE | --profile "
        "household]\n"
        "                    [--interval 10m] [--speed N] [--backfill FROM..TO] [--spool FILE]\n"
        "                    [--devices FILE] [--cacert FILE] [--commands] [--quiet] [more "
        "options]\n"
        "       wattline-sim (--amqp URL | --mqtt URL) (--device-id N | --serial S) [--token T |\n"
        "                    --token-file F] [the same source, timing and spool options]\n"
        "\n"
        "Simulates smart meters posting readings to a Wattline server (POST "
        "/api/v1/measurements).\n"
        "\n"
        "Source of readings (cumulative kWh register values):\n"
        "  --csv FILE            one value per line (optionally quoted, no header), or "
        "\"ts,value\"\n"
        "                        lines (RFC 3339) with a header\n"
        "  --profile household   a generated household load profile (the default)\n"
        "  --seed N              which household (default 1); the same seed gives the same meter\n"
        "\n"
        "Timing:\n"
        "  --interval D          simulated time between readings: 600, 30s, 10m, 1h (default 10m)\n"
        "  --start TS            timestamp of the first reading (RFC 3339). Default: now aligned\n"
        "                        down to the interval; with --speed > 1, early enough that the\n"
        "                        last reading (or a day of a profile) is stamped about now\n"
        "  --speed N             compress simulated time N times (N >= 1, default 1). A reading "
        "is\n"
        "                        never sent before its timestamp: the server refuses the future\n"
        "  --count N             the run has N readings (default: all of a CSV; a profile runs\n"
        "                        until stopped)\n"
        "  --backfill FROM..TO   upload the readings in [FROM, TO) as fast as the server takes\n"
        "                        them, in batches\n"
        "\n"
        "Server and device:\n"
        "  --url URL             server base URL (http:// or https://)\n"
        "  --token T             device token (visible to other local users in the process\n"
        "                        list: prefer --token-file or WATTLINE_DEVICE_TOKEN)\n"
        "  --token-file F        read the token from the first line of F\n"
        "  --cacert FILE         trust this CA bundle (PEM) for https\n"
        "  --reading-type T      cumulative (default: send the register as meter_kwh) or\n"
        "                        interval (send the energy since the previous reading as kwh)\n"
        "  --batch N             at most N readings per request (1..10000, default 500)\n"
        "\n"
        "Reliability: every reading is written to the spool before it is sent and stays there\n"
        "until the server acknowledges it; network errors, 408, 429 and 5xx are retried with\n"
        "exponential backoff (full jitter, 200 ms to 30 s, at least Retry-After). A restart\n"
        "with the same spool resends what is pending and continues where the run stopped.\n"
        "  --spool FILE          spool file (default " DEFAULT_SPOOL "; with --devices, a\n"
        "                        directory, default " DEFAULT_SPOOL_DIR ", one NAME.spool each)\n"
        "\n"
        "Broker (instead of --url: publish to RabbitMQ, which Wattline consumes):\n"
        "  --amqp URL            amqp://USER:PASSWORD@HOST:5672/%2f (a RabbitMQ user's): each\n"
        "                        message is Wattline's own body {\"device_id\": N, ...} to the\n"
        "                        exchange wattline, routing key measurements.<id or serial>,\n"
        "                        persistent, with publisher confirms; no token needed\n"
        "  --mqtt URL            mqtt://HOST:1883: QoS 1 to devices/<id or serial>/measurements,\n"
        "                        logging in with the id or serial and the device token\n"
        "  --device-id N         the device's id in Wattline (the token does not say it)\n"
        "  --serial S            or its serial, as the admin set it\n"
        "  A reading leaves the spool only once the broker confirmed its message; a rejected\n"
        "  message or a lost connection is retried with the same backoff (reconnecting).\n"
        "\n"
        "Commands (the server's, to the device):\n"
        "  --commands            take commands and obey them: over HTTP, long-polling\n"
        "                        GET /api/v1/device/commands?wait=25 with the device token (with\n"
        "                        --amqp too, given --url); with --mqtt, subscribed to\n"
        "                        devices/<id or serial>/commands. Known: relay {\"state\": "
        "\"off\"\n"
        "                        | \"on\"} (while off the register stays still; readings keep\n"
        "                        coming with it unchanged, and once on it continues from where\n"
        "                        it stood) and interval {\"seconds\": N} (1..86400); any other\n"
        "                        name is answered failed, \"unknown command\". A command\n"
        "                        delivered again is answered as before, not obeyed twice. The\n"
        "                        simulator then runs until stopped (SIGINT, SIGTERM), polling\n"
        "                        after its readings are sent\n"
        "\n"
        "Gateway:\n"
        "  --devices FILE        drive many meters: one \"TOKEN SOURCE [NAME]\" per line, SOURCE\n"
        "                        being profile:household, csv:PATH or a CSV path\n"
        "  --max-connections N   at most N requests at once (1..1024, default 4)\n"
        "\n"
        "Output:\n"
        "  --quiet               no progress line and no retry messages\n"
        "  --print values|csv    print the readings instead of sending them (values: one per\n"
        "                        line, the classic format; csv: \"ts,meter_kwh\" with a header)\n"
        "  --help, --version\n"
        "\n"
        "Exit status: 0 every reading acknowledged; 1 local failure (spool, memory);\n"
        "2 bad command line or input file; 3 the server refused the readings and a retry\n"
        "cannot help (a 4xx other than 408/429, such as a revoked token, or a TLS verification\n"
        "failure), the pending readings stay in the spool; 128+signal when stopped by SIGINT or\n"
        "SIGTERM (the spool keeps what is pending), the usual end of a run with --commands.\n",
        out);
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("wattline-sim: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'wattline-sim --help'.\n", stderr);
    return -1;
}

static int parse_count(const char *text, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (*text == '\0' || *end != '\0' || errno != 0 || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_speed(const char *text, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (*text == '\0' || *end != '\0' || errno != 0 || !isfinite(v) || v < 1.0 || v > 1e9)
        return -1;
    *out = v;
    return 0;
}

enum {
    OPT_TOKEN_FILE = 256,
    OPT_CSV,
    OPT_PROFILE,
    OPT_INTERVAL,
    OPT_SPEED,
    OPT_BACKFILL,
    OPT_SPOOL,
    OPT_DEVICES,
    OPT_CACERT,
    OPT_START,
    OPT_COUNT,
    OPT_BATCH,
    OPT_MAX_CONNECTIONS,
    OPT_READING_TYPE,
    OPT_SEED,
    OPT_PRINT,
    OPT_VERSION,
    OPT_AMQP,
    OPT_MQTT,
    OPT_DEVICE_ID,
    OPT_SERIAL,
    OPT_COMMANDS,
};

static const struct option long_options[] = {
    {"url", required_argument, NULL, 'u'},
    {"token", required_argument, NULL, 't'},
    {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
    {"csv", required_argument, NULL, OPT_CSV},
    {"profile", required_argument, NULL, OPT_PROFILE},
    {"interval", required_argument, NULL, OPT_INTERVAL},
    {"speed", required_argument, NULL, OPT_SPEED},
    {"backfill", required_argument, NULL, OPT_BACKFILL},
    {"spool", required_argument, NULL, OPT_SPOOL},
    {"devices", required_argument, NULL, OPT_DEVICES},
    {"cacert", required_argument, NULL, OPT_CACERT},
    {"start", required_argument, NULL, OPT_START},
    {"count", required_argument, NULL, OPT_COUNT},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
    {"reading-type", required_argument, NULL, OPT_READING_TYPE},
    {"seed", required_argument, NULL, OPT_SEED},
    {"print", required_argument, NULL, OPT_PRINT},
    {"amqp", required_argument, NULL, OPT_AMQP},
    {"mqtt", required_argument, NULL, OPT_MQTT},
    {"device-id", required_argument, NULL, OPT_DEVICE_ID},
    {"serial", required_argument, NULL, OPT_SERIAL},
    {"commands", no_argument, NULL, OPT_COMMANDS},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* One option into `o`. Returns 0, 1 (--help/--version answered) or -1. */
static int apply_option(struct options *o, int opt, const char *arg)
{
    struct meter_settings *s = &o->set;
    int64_t n;
    switch (opt) {
    case 'u':
        o->url = arg;
        return 0;
    case 't':
        o->token = arg;
        return 0;
    case OPT_TOKEN_FILE:
        o->token_file = arg;
        return 0;
    case OPT_CSV:
        o->csv = arg;
        return 0;
    case OPT_PROFILE:
        o->profile = arg;
        return 0;
    case OPT_SPOOL:
        o->spool = arg;
        return 0;
    case OPT_DEVICES:
        o->devices = arg;
        return 0;
    case OPT_CACERT:
        s->client.cacert = arg;
        return 0;
    case 'q':
        o->quiet = true;
        return 0;
    case OPT_COMMANDS:
        o->commands = true;
        return 0;
    case OPT_INTERVAL:
        s->interval_given = true;
        return time_parse_duration(arg, &s->interval_us) == 0
                   ? 0
                   : usage_error("--interval: \"%s\" is not a duration like 10m (1s..366d)", arg);
    case OPT_SPEED:
        return parse_speed(arg, &s->speed) == 0
                   ? 0
                   : usage_error("--speed: \"%s\" is not a number >= 1", arg);
    case OPT_BACKFILL:
        s->backfill = true;
        return time_parse_range(arg, &s->from_us, &s->to_us) == 0
                   ? 0
                   : usage_error("--backfill: \"%s\" is not FROM..TO (RFC 3339, FROM < TO)", arg);
    case OPT_START:
        s->start_given = true;
        return time_parse_rfc3339(arg, &s->start_us) == 0
                   ? 0
                   : usage_error("--start: \"%s\" is not an RFC 3339 timestamp", arg);
    case OPT_COUNT:
        return parse_count(arg, 1, INT64_MAX - 1, &s->count) == 0
                   ? 0
                   : usage_error("--count: \"%s\" is not a number >= 1", arg);
    case OPT_BATCH:
        if (parse_count(arg, 1, 10000, &n) != 0)
            return usage_error("--batch: \"%s\" is not a number from 1 to 10000", arg);
        s->batch = (size_t)n;
        return 0;
    case OPT_MAX_CONNECTIONS:
        if (parse_count(arg, 1, 1024, &n) != 0)
            return usage_error("--max-connections: \"%s\" is not a number from 1 to 1024", arg);
        o->max_connections = (size_t)n;
        return 0;
    case OPT_SEED:
        if (parse_count(arg, 0, INT64_MAX, &n) != 0)
            return usage_error("--seed: \"%s\" is not a number >= 0", arg);
        o->seed = (uint64_t)n;
        return 0;
    case OPT_READING_TYPE:
        if (strcmp(arg, "cumulative") == 0 || strcmp(arg, "interval") == 0) {
            s->type = arg[0] == 'c' ? READING_CUMULATIVE : READING_INTERVAL;
            return 0;
        }
        return usage_error("--reading-type: \"%s\" is not cumulative or interval", arg);
    case OPT_PRINT:
        if (strcmp(arg, "values") != 0 && strcmp(arg, "csv") != 0)
            return usage_error("--print: \"%s\" is not values or csv", arg);
        o->print = arg;
        return 0;
    case OPT_AMQP:
        o->amqp = arg;
        return 0;
    case OPT_MQTT:
        o->mqtt = arg;
        return 0;
    case OPT_DEVICE_ID:
        if (parse_count(arg, 1, INT64_MAX, &n) != 0)
            return usage_error("--device-id: \"%s\" is not a number >= 1", arg);
        o->device.id = n;
        return 0;
    case OPT_SERIAL:
        if (!broker_serial_valid(arg))
            return usage_error("--serial: \"%s\" is not 1-64 of A-Za-z0-9_- (not all digits)", arg);
        snprintf(o->device.serial, sizeof o->device.serial, "%s", arg);
        return 0;
    case 'h':
        usage(stdout);
        return 1;
    case OPT_VERSION:
        puts("wattline-sim " SIM_VERSION);
        return 1;
    default:
        return usage_error("%s", "unknown option or missing argument");
    }
}

/* --amqp or --mqtt: one device that names itself. 0 or -1 (reported). */
static int check_broker_options(const struct options *o)
{
    if (o->amqp != NULL && o->mqtt != NULL)
        return usage_error("%s", "--amqp and --mqtt exclude each other");
    if (o->devices != NULL)
        return usage_error("%s", "--amqp and --mqtt drive one device: no --devices");
    if (o->device.id == 0 && o->device.serial[0] == '\0')
        return usage_error("%s", "--amqp and --mqtt need the device's --device-id or --serial");
    if (o->device.id != 0 && o->device.serial[0] != '\0')
        return usage_error("%s", "--device-id and --serial exclude each other");
    if (o->token != NULL && o->token_file != NULL)
        return usage_error("%s", "--token and --token-file exclude each other");
    if (o->commands && o->amqp != NULL && o->url == NULL)
        return usage_error("%s", "--commands with --amqp needs --url: AMQP carries no commands to "
                                 "a device, so they are polled for over HTTP (or use --mqtt)");
    if (o->commands && o->amqp != NULL && strncmp(o->url, "http://", 7) != 0 &&
        strncmp(o->url, "https://", 8) != 0)
        return usage_error("--url: \"%s\" is not an http:// or https:// URL", o->url);
    struct broker_url u;
    char err[600];
    if (broker_url_parse(o->amqp ? BROKER_AMQP : BROKER_MQTT, o->amqp ? o->amqp : o->mqtt, &u, err,
                         sizeof err) != 0)
        return usage_error("%s", err);
    broker_url_free(&u);
    return 0;
}

/* Checks across options. 0 or -1 (reported). */
static int check_options(const struct options *o)
{
    const struct meter_settings *s = &o->set;
    if (s->backfill && (s->start_given || s->speed != 1.0))
        return usage_error("%s", "--backfill sends history at once: no --start or --speed");
    if (s->backfill && s->to_us > time_now_us() + FUTURE_LIMIT_US)
        return usage_error("%s", "--backfill: TO is in the future (the server refuses readings "
                                 "more than 5 minutes ahead)");
    if (o->csv != NULL && o->profile != NULL)
        return usage_error("%s", "--csv and --profile exclude each other");
    if (o->print != NULL && o->commands)
        return usage_error("%s", "--print sends nothing: no --commands");
    if (o->print != NULL)
        return o->devices ? usage_error("%s", "--print works on one source, not --devices") : 0;
    if (o->amqp != NULL || o->mqtt != NULL)
        return check_broker_options(o);
    if (o->url == NULL)
        return usage_error("%s", "--url is required");
    if (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0)
        return usage_error("--url: \"%s\" is not an http:// or https:// URL", o->url);
    if (o->devices != NULL && (o->token || o->token_file || o->csv || o->profile))
        return usage_error("%s", "--devices names tokens and sources itself: no --token, "
                                 "--token-file, --csv or --profile");
    if (o->token != NULL && o->token_file != NULL)
        return usage_error("%s", "--token and --token-file exclude each other");
    return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){
        .seed = 1,
        .max_connections = 4,
        .set = {.type = READING_CUMULATIVE,
                .interval_us = 10 * US_PER_MIN,
                .count = INT64_MAX,
                .speed = 1.0,
                .batch = 500},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "u:t:qh", long_options, NULL)) != -1) {
        int rc = apply_option(o, opt, optarg);
        if (rc != 0)
            return rc;
    }
    if (optind < argc)
        return usage_error("unexpected argument \"%s\"", argv[optind]);
    /* Readings go over HTTP only without a broker; commands too, or with AMQP. */
    o->set.client.url = o->amqp || o->mqtt ? NULL : o->url;
    o->set.commands = o->commands;
    o->set.commands_url = o->commands && o->mqtt == NULL ? o->url : NULL;
    return check_options(o);
}

/* The token of a single device: --token, --token-file or WATTLINE_DEVICE_TOKEN. */
static int read_token(const struct options *o, char *buf, size_t size)
{
    const char *token = o->token;
    if (o->token_file != NULL) {
        FILE *f = fopen(o->token_file, "r");
        if (f == NULL || fgets(buf, (int)size, f) == NULL) {
            fprintf(stderr, "wattline-sim: --token-file %s: %s\n", o->token_file,
                    f ? "empty" : strerror(errno));
            if (f)
                fclose(f);
            return -1;
        }
        fclose(f);
        buf[strcspn(buf, "\r\n")] = '\0';
        token = buf;
    } else if (token == NULL) {
        token = getenv("WATTLINE_DEVICE_TOKEN");
        if (token == NULL || token[0] == '\0')
            return usage_error("%s", "no device token: use --token, --token-file or "
                                     "WATTLINE_DEVICE_TOKEN");
    }
    if (!devices_token_valid(token))
        return usage_error("%s", "the device token is empty or has blanks or control characters");
    if (token != buf)
        snprintf(buf, size, "%s", token);
    return 0;
}

static uint64_t name_seed(uint64_t seed, const char *name)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325); /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * UINT64_C(0x100000001b3);
    return h ^ seed;
}

static int print_readings(const struct options *o)
{
    struct source src;
    char err[512];
    const char *spec = o->csv ? o->csv : NULL;
    int rc = spec ? source_open_csv(&src, spec, err, sizeof err)
                  : source_open_profile(&src, o->profile ? o->profile : "household", o->seed, err,
                                        sizeof err);
    if (rc != 0) {
        fprintf(stderr, "wattline-sim: %s\n", err);
        return EXIT_USAGE;
    }
    meter_plan(&src, &o->set, meter_wanted_start(&src, &o->set));
    if (src.end_seq == INT64_MAX && src.end_ts_us == INT64_MAX) {
        source_close(&src);
        usage_error("%s", "--print needs an end: --count or --backfill");
        return EXIT_USAGE;
    }
    bool csv = strcmp(o->print, "csv") == 0;
    if (csv)
        printf("ts,%s\n", schedule_member(o->set.type));
    struct reading r;
    for (int64_t seq = src.first_seq; source_get(&src, seq, &r); seq++) {
        struct spool_entry e = meter_entry_for(&src, o->set.type, &r);
        char ts[TIME_RFC3339_SIZE];
        time_format_rfc3339(e.ts_us, ts, sizeof ts);
        if (csv)
            printf("%s,%.15g\n", ts, e.value);
        else
            printf("%.15g\n", e.value);
    }
    source_close(&src);
    return fflush(stdout) == 0 && !ferror(stdout) ? EXIT_DONE : EXIT_BROKEN;
}

/* Tell people what a freshly opened meter starts from. */
static void announce(struct progress *p, const struct meter *m)
{
    size_t pending = spool_pending(&m->spool);
    const char *sep = m->name[0] ? ": " : "";
    if (m->spool.resumed && pending > 0)
        progress_event(p, false, "%s%sresuming from spool %s: %zu readings pending", m->name, sep,
                       m->spool.path, pending);
    else if (m->spool.resumed && meter_done(m))
        progress_event(p, false,
                       "%s%sspool %s holds this run, complete: nothing to send (remove it to "
                       "start over)",
                       m->name, sep, m->spool.path);
}

/* One meter; its token lands in `token` (the caller wipes it), for MQTT's login. */
static int open_single(const struct options *o, struct progress *p, struct meter **out,
                       size_t *count, char *token, size_t token_size)
{
    /* An AMQP publisher logs in with the URL's user: the device token is not needed. */
    bool need_token = o->amqp == NULL || o->token || o->token_file || o->commands;
    if (need_token && read_token(o, token, token_size) != 0)
        return EXIT_USAGE;
    char err[1600];
    struct source src;
    int rc = o->csv ? source_open_csv(&src, o->csv, err, sizeof err)
                    : source_open_profile(&src, o->profile ? o->profile : "household", o->seed, err,
                                          sizeof err);
    struct meter *m = rc == 0 ? calloc(1, sizeof *m) : NULL;
    if (rc == 0 && m == NULL) {
        snprintf(err, sizeof err, "out of memory");
        source_close(&src);
    }
    if (m != NULL && meter_open(m, "", &src, token, o->spool ? o->spool : DEFAULT_SPOOL, &o->set,
                                err, sizeof err) != 0) {
        free(m);
        m = NULL;
    }
    if (m == NULL) {
        fprintf(stderr, "wattline-sim: %s\n", err);
        return EXIT_USAGE;
    }
    announce(p, m);
    *out = m;
    *count = 1;
    return EXIT_DONE;
}

static int make_spool_dir(const char *dir)
{
    if (mkdir(dir, 0700) == 0 || errno == EEXIST)
        return 0;
    fprintf(stderr, "wattline-sim: cannot create spool directory %s: %s\n", dir, strerror(errno));
    return -1;
}

static int open_device(const struct options *o, const struct device_spec *d, const char *dir,
                       struct meter *m, char *err, size_t err_size)
{
    char path[4200];
    if ((size_t)snprintf(path, sizeof path, "%s/%s.spool", dir, d->name) >= sizeof path) {
        snprintf(err, err_size, "spool path too long");
        return -1;
    }
    struct source src;
    char why[1400];
    if (source_open_spec(&src, d->source, name_seed(o->seed, d->name), why, sizeof why) != 0 ||
        meter_open(m, d->name, &src, d->token, path, &o->set, why, sizeof why) != 0) {
        snprintf(err, err_size, "device %s: %s", d->name, why);
        return -1;
    }
    return 0;
}

static int open_gateway(const struct options *o, struct progress *p, struct meter **out,
                        size_t *count)
{
    char err[1600];
    struct device_spec *list;
    size_t n;
    if (devices_load(o->devices, &list, &n, err, sizeof err) != 0) {
        fprintf(stderr, "wattline-sim: %s\n", err);
        return EXIT_USAGE;
    }
    const char *dir = o->spool ? o->spool : DEFAULT_SPOOL_DIR;
    struct meter *meters = calloc(n, sizeof *meters);
    int status = meters != NULL && make_spool_dir(dir) == 0 ? EXIT_DONE : EXIT_USAGE;
    size_t opened = 0;
    for (; status == EXIT_DONE && opened < n; opened++) {
        if (open_device(o, &list[opened], dir, &meters[opened], err, sizeof err) != 0) {
            fprintf(stderr, "wattline-sim: %s\n", err);
            status = EXIT_USAGE;
            break;
        }
        announce(p, &meters[opened]);
    }
    devices_free(list, n);
    if (status != EXIT_DONE) {
        for (size_t i = 0; i < opened; i++)
            meter_close(&meters[i]);
        free(meters);
        return status;
    }
    *out = meters;
    *count = n;
    return EXIT_DONE;
}

static void install_signals(void)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Leave completed spools small: just the header and the last reading. */
static void compact_finished(struct progress *p, struct meter *meters, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        struct spool *sp = &meters[i].spool;
        if (spool_pending(sp) == 0 && spool_compact(sp, 0) != 0)
            progress_event(p, true, "cannot compact spool %s: %s", sp->path, strerror(errno));
    }
}

/* The broker's loop over a link made from the options; `token` is the MQTT password. */
static enum run_result run_broker(const struct options *o, struct run *r, const char *token,
                                  char *err, size_t err_size)
{
    /* Commands come over MQTT with --mqtt; with --amqp they are polled for over HTTP. */
    struct link_target t = {
        .device = o->device, .token = token, .commands = o->commands && o->mqtt != NULL};
    struct link link;
    if (broker_url_parse(o->amqp ? BROKER_AMQP : BROKER_MQTT, o->amqp ? o->amqp : o->mqtt, &t.url,
                         err, err_size) != 0)
        return RUN_BROKEN;
    enum run_result result = RUN_BROKEN;
    if (link_open(&link, &t, err, err_size) == 0)
        result = broker_run_loop(r, &link, err, err_size);
    link_close(&link);
    broker_url_free(&t.url);
    return result;
}

static int run(const struct options *o, struct progress *p, struct meter *meters, size_t count,
               const char *token)
{
    size_t window = o->set.batch * 4 > 2000 ? o->set.batch * 4 : 2000;
    struct run r = {
        .meters = meters,
        .count = count,
        .max_connections = o->max_connections,
        .window = window,
        .progress = p,
        .stop = &stop_signal,
        .rng = (uint64_t)time_now_us() ^ ((uint64_t)getpid() << 32),
    };
    install_signals();
    char err[600] = "";
    enum run_result result = o->amqp || o->mqtt ? run_broker(o, &r, token, err, sizeof err)
                                                : run_loop(&r, err, sizeof err);
    struct progress_totals totals;
    progress_sum(meters, count, &totals);
    progress_draw(p, &totals, time_mono_us(), true);
    progress_end(p);
    if (result == RUN_BROKEN)
        fprintf(stderr, "wattline-sim: %s\n", err);
    compact_finished(p, meters, count);
    const char *hint = o->spool ? o->spool : o->devices ? DEFAULT_SPOOL_DIR : DEFAULT_SPOOL;
    progress_summary(meters, count, hint);
    switch (result) {
    case RUN_BROKEN:
        return EXIT_BROKEN;
    case RUN_STOPPED:
        return 128 + stop_signal;
    case RUN_DONE:
        break;
    }
    return totals.failed > 0 ? EXIT_REFUSED : EXIT_DONE;
}

int main(int argc, char **argv)
{
    struct options o;
    int rc = parse_options(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? EXIT_DONE : EXIT_USAGE;
    if (o.print != NULL)
        return print_readings(&o);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fputs("wattline-sim: cannot initialise libcurl\n", stderr);
        return EXIT_BROKEN;
    }
    struct progress progress;
    progress_init(&progress, o.quiet, isatty(STDERR_FILENO));
    struct meter *meters = NULL;
    size_t count = 0;
    char token[4096] = "";
    int status = o.devices ? open_gateway(&o, &progress, &meters, &count)
                           : open_single(&o, &progress, &meters, &count, token, sizeof token);
    if (status == EXIT_DONE)
        status = run(&o, &progress, meters, count, token);
    memset(token, 0, sizeof token);
    for (size_t i = 0; i < count; i++)
        meter_close(&meters[i]);
    free(meters);
    curl_global_cleanup();
    return status;
}
