#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../auth/accounts.h"
#include "../base/crypto.h"
#include "cli.h"
#include "../base/config.h"

struct user_add_args {
    const char *email, *name, *role;
    bool generate, if_none;
    char *rest[64]; /* settings flags, passed on to config_parse */
    int nrest;
};

static bool parse_args(int argc, char **argv, struct user_add_args *a)
{
    for (int i = 0; i < argc; i++) {
        const char **slot = !strcmp(argv[i], "--email")  ? &a->email
                            : !strcmp(argv[i], "--name") ? &a->name
                            : !strcmp(argv[i], "--role") ? &a->role
                                                         : NULL;
        if (slot && i + 1 < argc)
            *slot = argv[++i];
        else if (slot)
            return false;
        else if (!strcmp(argv[i], "--generate-password"))
            a->generate = true;
        else if (!strcmp(argv[i], "--if-none"))
            a->if_none = true;
        else if (a->nrest < 64)
            a->rest[a->nrest++] = argv[i];
        else
            return false;
    }
    return a->email && a->name && a->role;
}

static const char *env_lookup(const char *name, void *ctx)
{
    (void)ctx;
    return getenv(name);
}

/* One line from stdin without its newline; false when there is none. */
static bool read_password(char *buf, size_t size, size_t *len)
{
    if (!fgets(buf, (int)size, stdin))
        return false;
    *len = strcspn(buf, "\r\n");
    buf[*len] = '\0';
    return true;
}

int cli_user_add(int argc, char **argv)
{
    struct user_add_args a = {0};
    if (!parse_args(argc, argv, &a)) {
        fprintf(stderr, "usage: wattline user add --email E --name N --role admin|client "
                        "[--generate-password] [--if-none]\n");
        return 2;
    }
    struct config cfg;
    char err[512];
    if (!config_parse(&cfg, env_lookup, NULL, a.nrest, a.rest, err, sizeof err)) {
        fprintf(stderr, "wattline: %s\n", err);
        config_free(&cfg);
        return 2;
    }
    char password[PASSWORD_MAX + 2];
    size_t len = 0;
    int rc = 1;
    struct db_pool_options opts = {.url = cfg.database_url,
                                   .size = 1,
                                   .statement_timeout_ms = cfg.statement_timeout_ms,
                                   .connect_timeout_s = 5,
                                   .application_name = "wattline-cli",
                                   .timeout_s = cfg.db_timeout_s};
    struct db_conn *conn = db_connect(&opts, err, sizeof err);
    if (!conn) {
        fprintf(stderr, "wattline: %s\n", err);
        goto out;
    }
    long long count = 0;
    if (a.if_none && db_users_count(conn, &count) != STATUS_OK) {
        fprintf(stderr, "wattline: cannot count users (is the schema migrated?)\n");
        goto out;
    }
    if (a.if_none && count > 0) {
        rc = 0; /* someone can already log in: nothing to create */
        goto out;
    }
    if (a.generate) {
        if (!crypto_token_new(password)) {
            fprintf(stderr, "wattline: no randomness available\n");
            goto out;
        }
        password[20] = '\0'; /* 20 base64url characters: 120 bits */
        len = 20;
    } else if (!read_password(password, sizeof password, &len)) {
        fprintf(stderr, "wattline: expected the password as one line on standard input\n");
        goto out;
    }
    struct user u;
    const char *field, *why;
    /* Recorded like POST /users, with no actor, address or request: the
     * command line is run by whoever holds the database's credentials. */
    json_t *changes =
        json_pack("{s:s, s:s, s:s}", "email", a.email, "name", a.name, "role", a.role);
    char *changes_text = changes ? json_dumps(changes, JSON_COMPACT) : NULL;
    json_decref(changes);
    struct audit_ctx audit = {.changes = changes_text};
    enum status st = changes_text ? accounts_create(conn, NULL, a.email, a.name, role_parse(a.role),
                                                    password, len, &audit, &u, &field, &why)
                                  : STATUS_INTERNAL;
    free(changes_text);
    if (st == STATUS_INVALID)
        fprintf(stderr, "wattline: %s: %s\n", field, why);
    else if (st == STATUS_CONFLICT)
        fprintf(stderr, "wattline: a user with email %s exists already\n", a.email);
    else if (st != STATUS_OK)
        fprintf(stderr, "wattline: could not create the user (database error)\n");
    else {
        printf("created %s user %s (id %lld)\n", role_name(u.role), u.email, u.id);
        if (a.generate)
            printf("password: %s\n", password);
        rc = 0;
    }
out:
    explicit_bzero(password, sizeof password);
    db_disconnect(conn);
    config_free(&cfg);
    return rc == 0 ? 0 : (rc == 2 ? 2 : 1);
}
