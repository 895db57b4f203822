#include "base64.h"

#include <string.h>

static const char *const ALPHABETS[] = {
    [BASE64_STD] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
    [BASE64_URL] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
};

void base64_encode(const unsigned char *in, size_t n, enum base64_alphabet which, char *out)
{
    const char *alphabet = ALPHABETS[which];
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        size_t left = n - i;
        unsigned long group = (unsigned long)in[i] << 16;
        if (left > 1)
            group |= (unsigned long)in[i + 1] << 8;
        if (left > 2)
            group |= in[i + 2];
        size_t chars = left >= 3 ? 4 : left + 1;
        for (size_t c = 0; c < chars; c++)
            out[o++] = alphabet[(group >> (18 - 6 * c)) & 0x3f];
    }
    out[o] = '\0';
}

static int value_of(char ch, const char *alphabet)
{
    if (ch == '\0')
        return -1;
    const char *hit = strchr(alphabet, ch);
    return hit ? (int)(hit - alphabet) : -1;
}

bool base64_decode(const char *in, size_t len, enum base64_alphabet which, unsigned char *out,
                   size_t cap, size_t *out_len)
{
    const char *alphabet = ALPHABETS[which];
    if (len % 4 == 1)
        return false;
    size_t n = len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
    if (n > cap)
        return false;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        size_t chars = len - i >= 4 ? 4 : len - i;
        unsigned long group = 0;
        for (size_t c = 0; c < 4; c++) {
            int v = c < chars ? value_of(in[i + c], alphabet) : 0;
            if (v < 0)
                return false;
            group = group << 6 | (unsigned long)v;
        }
        size_t bytes = chars - 1;
        /* Bits below the last full byte must be zero (canonical form). */
        if (bytes < 3 && (group & ((1UL << (8 * (3 - bytes))) - 1)) != 0)
            return false;
        for (size_t b = 0; b < bytes; b++)
            out[o++] = (unsigned char)(group >> (16 - 8 * b));
    }
    *out_len = o;
    return true;
}
