#include "chat_text.h"

#include <string.h>

#include "../db/chat.h"

size_t chat_text_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80; /* every byte but continuation bytes */
    return n;
}

const char *chat_text_problem(const char *s, size_t len)
{
    if (len == 0)
        return "text must not be empty";
    if (memchr(s, '\0', len))
        return "text must not contain NUL";
    /* 4 bytes per character at most: a longer text cannot be short enough,
     * and is refused without being scanned. */
    if (len > 4 * (size_t)CHAT_TEXT_MAX_CHARS || chat_text_chars(s, len) > CHAT_TEXT_MAX_CHARS)
        return "text must be at most 4000 characters";
    return NULL;
}
