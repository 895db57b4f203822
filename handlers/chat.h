/* chat: the support chat's REST routes (API.md "Support chat"):
 * GET /api/v1/conversations, GET /api/v1/me/conversation,
 * GET and POST /api/v1/conversations/{id}/messages,
 * GET /api/v1/conversations/{id}/messages/{message_id},
 * POST /api/v1/conversations/{id}/read. */
#ifndef WATTLINE_HANDLERS_CHAT_H
#define WATTLINE_HANDLERS_CHAT_H

#include "../api/handler.h"

int chat_conversations_list(const struct request *req, struct response *res, struct app *app);
int chat_me_conversation(const struct request *req, struct response *res, struct app *app);
int chat_messages_list(const struct request *req, struct response *res, struct app *app);
int chat_message_get(const struct request *req, struct response *res, struct app *app);
int chat_messages_post(const struct request *req, struct response *res, struct app *app);
int chat_read_post(const struct request *req, struct response *res, struct app *app);

#endif
