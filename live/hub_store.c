/* hub_store: the hub's database operations on the application's pool. */
#include "../api/app.h"
#include "../auth/authn.h"
#include "hub.h"

static enum status store_authenticate(void *ctx, const char *token, struct caller *out)
{
    struct app *app = ctx;
    return authn_user(app->authn, token, out);
}

/* Borrows a pooled connection for one call: STATUS_UNAVAILABLE without one. */
#define WITH_CONN(app, call)                                                                       \
    do {                                                                                           \
        struct db_conn *conn = db_pool_acquire((app)->pool, APP_DB_WAIT_MS);                       \
        if (!conn)                                                                                 \
            return STATUS_UNAVAILABLE;                                                             \
        enum status st_ = (call);                                                                  \
        db_pool_release((app)->pool, conn);                                                        \
        return st_;                                                                                \
    } while (0)

static enum status store_alerts_since(void *ctx, long long owner_id, long long since_id, int limit,
                                      struct alert_list *out)
{
    struct app *app = ctx;
    struct alert_query q = {
        .owner_id = owner_id, .since_id = since_id, .limit = limit, .oldest_first = true};
    WITH_CONN(app, db_alerts_list(conn, &q, out));
}

static enum status store_alerts_by_ids(void *ctx, const long long *ids, int n,
                                       struct alert_list *out)
{
    struct app *app = ctx;
    WITH_CONN(app, db_alerts_by_ids(conn, ids, n, out));
}

static enum status store_owners(void *ctx, const long long *ids, int n, struct device_owner *out)
{
    struct app *app = ctx;
    WITH_CONN(app, db_usage_owners(conn, ids, n, out));
}

static enum status store_usage(void *ctx, const long long *ids, int n, struct device_usage **out,
                               int *count)
{
    struct app *app = ctx;
    WITH_CONN(app, db_usage_read(conn, ids, n, out, count));
}

static enum status store_user_roles(void *ctx, const long long *ids, int n, enum role *out)
{
    struct app *app = ctx;
    WITH_CONN(app, db_usage_user_roles(conn, ids, n, out));
}

static enum status store_authenticate_device(void *ctx, const char *token, struct caller *out)
{
    struct app *app = ctx;
    return authn_device(app->authn, token, out);
}

static enum status store_commands_by_ids(void *ctx, const long long *ids, int n,
                                         struct command_list *out)
{
    struct app *app = ctx;
    WITH_CONN(app, db_commands_by_ids(conn, ids, n, out));
}

static enum status store_commands_live_muted(void *ctx, const long long *ids, int n,
                                             long long **users, int *count)
{
    struct app *app = ctx;
    WITH_CONN(app, db_commands_live_muted(conn, ids, n, users, count));
}

static enum status store_commands_claim(void *ctx, long long device_id, struct command_list *out)
{
    struct app *app = ctx;
    WITH_CONN(app, db_commands_claim(conn, device_id, app->config->command_lock_s,
                                     COMMANDS_CLAIM_MAX, out));
}

static enum status store_commands_answer(void *ctx, long long device_id, long long id,
                                         const struct command_answer *answer, struct command *out,
                                         bool *changed)
{
    struct app *app = ctx;
    WITH_CONN(app, db_commands_answer(conn, device_id, id, answer, out, changed));
}

static enum status store_chat_post(void *ctx, const struct chat_post *in, struct chat_message *out,
                                   int *retry_after_s)
{
    struct app *app = ctx;
    WITH_CONN(app, db_chat_post(conn, in, out, retry_after_s));
}

static enum status store_chat_read(void *ctx, const struct chat_read *in,
                                   struct chat_read_result *out)
{
    struct app *app = ctx;
    WITH_CONN(app, db_chat_mark_read(conn, in, out));
}

static enum status store_chat_typing(void *ctx, const struct chat_typing *in, int n,
                                     enum status *out)
{
    struct app *app = ctx;
    WITH_CONN(app, db_chat_typing(conn, in, n, out));
}

static enum status store_chat_messages(void *ctx, const long long *ids, int n,
                                       struct chat_message_list *out)
{
    struct app *app = ctx;
    WITH_CONN(app, db_chat_messages_by_ids(conn, ids, n, out));
}

static enum status store_user_names(void *ctx, const long long *ids, int n,
                                    char (*out)[USER_NAME_MAX * 4 + 1])
{
    struct app *app = ctx;
    WITH_CONN(app, db_chat_user_names(conn, ids, n, out));
}

static enum status store_notices(void *ctx, const long long *ids, int n, struct notice_list *out)
{
    struct app *app = ctx;
    WITH_CONN(app, db_notices_by_ids(conn, ids, n, out));
}

struct hub_store hub_store_for_app(struct app *app)
{
    return (struct hub_store){
        .authenticate = store_authenticate,
        .alerts_since = store_alerts_since,
        .alerts_by_ids = store_alerts_by_ids,
        .owners = store_owners,
        .usage = store_usage,
        .user_roles = store_user_roles,
        .authenticate_device = store_authenticate_device,
        .commands_by_ids = store_commands_by_ids,
        .commands_live_muted = store_commands_live_muted,
        .commands_claim = store_commands_claim,
        .commands_answer = store_commands_answer,
        .chat_post = store_chat_post,
        .chat_read = store_chat_read,
        .chat_typing = store_chat_typing,
        .chat_messages = store_chat_messages,
        .user_names = store_user_names,
        .notices = store_notices,
        .ctx = app,
    };
}
