/* mhd204: the HTTP ceiling of the ingestion benchmark.
 *
 *   mhd204 PORT [THREADS]
 *
 * A minimal libmicrohttpd server set up like Wattline's (epoll, an internal
 * thread pool of one thread per core unless THREADS says otherwise, keep-alive,
 * loopback only) that reads each request's body in full and answers 204 with
 * no body. Whatever Wattline does beyond this (JSON, authentication, the
 * database) is what separates its figure from this one.
 *
 * The response is queued on the final call of the access handler, after the
 * body is received: queueing on the first call makes libmicrohttpd close the
 * connection (see PERF-NOTES.md), which would measure connection setup
 * instead of request handling.
 *
 * Runs until SIGINT or SIGTERM; exit status 0 then, 1 if it cannot start,
 * 2 for bad arguments.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The per-request marker: set on the first call, so that later calls know the
 * headers have been seen. Its address is all that matters. */
static char request_seen;

static bool parse_int(const char *text, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    struct MHD_Response *empty = cls;
    if (!*con_cls) {
        *con_cls = &request_seen;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0; /* the body is consumed and dropped */
        return MHD_YES;
    }
    return MHD_queue_response(conn, MHD_HTTP_NO_CONTENT, empty);
}

static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 && n < 64 ? (int)n : 2;
}

/* Blocks until SIGINT or SIGTERM arrives. The signals are blocked before the
 * daemon's threads start, so only this thread ever receives them. */
static void wait_for_stop(const sigset_t *stop)
{
    int sig;
    while (sigwait(stop, &sig) != 0)
        ;
}

int main(int argc, char **argv)
{
    long port, threads = default_threads();
    if (argc < 2 || argc > 3 || !parse_int(argv[1], 1, 65535, &port) ||
        (argc == 3 && !parse_int(argv[2], 1, 256, &threads))) {
        fprintf(stderr, "usage: mhd204 PORT [THREADS]\n");
        return 2;
    }

    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    /* One response shared by every request: libmicrohttpd counts references. */
    struct MHD_Response *empty =
        MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!empty) {
        fprintf(stderr, "mhd204: cannot create the response\n");
        return 1;
    }

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | MHD_USE_TURBO;
    struct MHD_Daemon *daemon =
        MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, answer, empty, MHD_OPTION_SOCK_ADDR,
                         (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads,
                         MHD_OPTION_CONNECTION_LIMIT, 4096U, MHD_OPTION_CONNECTION_TIMEOUT, 30U,
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024), MHD_OPTION_END);
    if (!daemon) {
        fprintf(stderr, "mhd204: cannot listen on 127.0.0.1:%ld\n", port);
        MHD_destroy_response(empty);
        return 1;
    }

    wait_for_stop(&stop);
    MHD_stop_daemon(daemon);
    MHD_destroy_response(empty);
    return 0;
}
