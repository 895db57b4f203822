/* ws: the WebSocket server (libwebsockets) on WS_PORT, path /ws; wss:// with
 * TLS_CERT/TLS_KEY. The only file that includes libwebsockets.h.
 *
 * One service thread owns every socket. It feeds the hub (handlers/hub.h)
 * complete messages and closes, keeps a bounded outgoing queue per session
 * (written only from the writeable callback, one frame per callback), and
 * calls hub_drain() when another thread wakes it with lws_cancel_service(),
 * the one lws call that is safe from other threads. Messages over 64 KiB
 * close the session with 1009; a session whose queue overflows, or whose
 * queue has not moved for WS_STALL_S (a client that stopped reading), is
 * dropped;
 * peers are pinged after 30 s of silence and dropped when they do not answer.
 * No permessage-deflate.
 */
#ifndef WATTLINE_WS_H
#define WATTLINE_WS_H

#include <stddef.h>

#include "../base/config.h"

struct hub;
struct ws_server;

#define WS_PATH               "/ws"
#define WS_MAX_MESSAGE        (64 * 1024)
#define WS_QUEUE_MAX_MESSAGES 2048
#define WS_QUEUE_MAX_BYTES    (1024 * 1024)
#define WS_PING_AFTER_S       30 /* idle seconds before a PING */
#define WS_HANGUP_AFTER_S     45 /* idle seconds (no PONG either) before hanging up */
#define WS_STALL_S            20 /* a queue that made no progress this long is dropped */

/* Binds and starts the service thread; the hub's transport is set here.
 * NULL with a one-line reason in err. */
struct ws_server *ws_start(const struct config *cfg, struct hub *hub, char *err, size_t errlen);

/* Closes every session with 1001, and every one opened from now on, waiting
 * up to drain_ms for the close frames to go out; the thread keeps running.
 * What SIGTERM does first. NULL is a no-op. */
void ws_close_sessions(struct ws_server *ws, int drain_ms);

/* ws_close_sessions(), then stops the thread and frees. NULL is a no-op.
 * Call after hub_stop() and before hub_free(). */
void ws_stop(struct ws_server *ws, int drain_ms);

#endif
