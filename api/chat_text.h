/* chat_text: the contract's rule for a chat message's text, one check for
 * the REST route and the WebSocket alike. */
#ifndef WATTLINE_CHAT_TEXT_H
#define WATTLINE_CHAT_TEXT_H

#include <stddef.h>

/* Characters (code points) in len bytes of valid UTF-8, as jansson hands
 * strings over. */
size_t chat_text_chars(const char *s, size_t len);

/* NULL when s (len bytes of valid UTF-8) is a valid message text: 1 to
 * CHAT_TEXT_MAX_CHARS characters and no NUL (PostgreSQL text cannot hold
 * one). Otherwise why not, for a person (a string literal). */
const char *chat_text_problem(const char *s, size_t len);

#endif
