/* resources: the JSON of what several answers send, so that an alert reads
 * the same on the REST API and the WebSocket, and a user the same in
 * /users, /me and a login's session. */
#ifndef WATTLINE_RESOURCES_H
#define WATTLINE_RESOURCES_H

#include <jansson.h>

#include "../db/alerts.h"
#include "../db/commands.h"
#include "../db/chat.h"
#include "../db/users.h"

/* An RFC 3339 string for a time in microseconds, or null for 0. */
json_t *resource_time_or_null(long long us);

/* {"id","device_id","device_name","owner_id"|null,"hour_start","hour_kwh",
 *  "max_hourly_kwh","created_at","acknowledged_at"|null}; caller owns it. */
json_t *alert_to_json(const struct alert *a);

/* The contract's command: {"id","device_id","name","params","status",
 * "attempts","created_by"|null,"alert_id"|null,"created_at","expires_at",
 * "sent_at"|null,"completed_at"|null,"result"|null,"error"|null}, the same
 * on REST, on the WebSocket (users' and devices') and over MQTT. New
 * reference, NULL on allocation failure. */
json_t *command_to_json(const struct command *c);

/* {"id", "email", "name", "role", "created_at"}: what every answer shows of
 * a user (never the password hash). New reference, NULL on allocation failure. */
json_t *user_to_json(const struct user *u);

/* {"id", "conversation_id", "sender_id" | null, "sender_role", "text",
 *  "created_at", "read_at" | null}: a chat message on REST and in chat.*
 * messages alike. New reference, NULL on allocation failure. */
json_t *chat_message_to_json(const struct chat_message *m);

/* {"id", "user": {"id", "name", "email"}, "last_message" | null,
 *  "unread_count", "updated_at"}. New reference, NULL on allocation failure. */
json_t *chat_conversation_to_json(const struct chat_conversation *c);

#endif
