#include "access.h"

long long access_owner_scope(const struct caller *caller)
{
    return caller->role == ROLE_ADMIN ? 0 : caller->user_id;
}

bool access_device_or_reply(const struct request *req, struct db_conn *conn, struct device *out,
                            struct response *res)
{
    long long id;
    enum status st = request_param_id(req, 0, &id)
                         ? db_devices_get(conn, id, access_owner_scope(&req->caller), out)
                         : STATUS_NOT_FOUND;
    if (st != STATUS_OK)
        response_status(res, st);
    return st == STATUS_OK;
}
