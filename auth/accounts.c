#include "accounts.h"

#include <string.h>

#include "password.h"

const char *accounts_check_email(const char *email)
{
    size_t len = email ? strlen(email) : 0;
    if (len < 3 || len > USER_EMAIL_MAX)
        return "email must be 3 to 254 characters";
    const char *at = strchr(email, '@');
    if (!at || at == email || strchr(at + 1, '@') || !at[1] || !strchr(at + 1, '.') ||
        at[strlen(at) - 1] == '.')
        return "email must look like name@example.com";
    for (const unsigned char *p = (const unsigned char *)email; *p; p++)
        if (*p <= ' ' || *p == 0x7f || *p == '<' || *p == '>' || *p == '"' || *p == ',')
            return "email must not contain spaces, quotes, commas or angle brackets";
    return NULL;
}

const char *accounts_check_name(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > USER_NAME_MAX)
        return "name must be 1 to 200 bytes";
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < ' ' || *p == 0x7f)
            return "name must not contain control characters";
    return NULL;
}

const char *accounts_check_password(const char *password, size_t len)
{
    if (!password || len < PASSWORD_MIN || len > PASSWORD_MAX)
        return "password must be 10 to 1024 bytes";
    if (memchr(password, '\0', len))
        return "password must not contain NUL";
    return NULL;
}

enum status accounts_create(struct db_conn *conn, struct password_limiter *limiter,
                            const char *email, const char *name, enum role role,
                            const char *password, size_t password_len,
                            const struct audit_ctx *audit, struct user *out, const char **field,
                            const char **why)
{
    *field = NULL;
    *why = NULL;
    if ((*why = accounts_check_email(email)))
        *field = "email";
    else if ((*why = accounts_check_name(name)))
        *field = "name";
    else if (role == ROLE_NONE)
        *field = "role", *why = "role must be admin or client";
    else if ((*why = accounts_check_password(password, password_len)))
        *field = "password";
    if (*field)
        return STATUS_INVALID;

    char hash[PASSWORD_HASH_MAX];
    enum status st = accounts_hash_password(limiter, password, password_len, hash);
    if (st == STATUS_OK)
        st = db_users_create(conn, email, name, role, hash, audit, out);
    explicit_bzero(hash, sizeof hash);
    return st;
}

enum status accounts_hash_password(struct password_limiter *limiter, const char *password,
                                   size_t len, char out[PASSWORD_HASH_MAX])
{
    if (limiter && !password_limiter_enter(limiter, ACCOUNTS_HASH_WAIT_MS))
        return STATUS_UNAVAILABLE;
    bool hashed = password_hash(password, len, &PASSWORD_PARAMS_DEFAULT, out);
    if (limiter)
        password_limiter_leave(limiter);
    return hashed ? STATUS_OK : STATUS_INTERNAL;
}
