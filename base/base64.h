/* base64: the one base64 codec, without padding, in the standard alphabet
 * (scrypt hashes) or the URL alphabet (tokens, JWT segments, list cursors).
 * Decoding is strict, so every byte string has exactly one accepted text. */
#ifndef WATTLINE_BASE64_H
#define WATTLINE_BASE64_H

#include <stdbool.h>
#include <stddef.h>

enum base64_alphabet { BASE64_STD = 0, BASE64_URL };

/* Characters needed to encode n bytes without padding (a constant expression,
 * so buffers sized with it are ordinary arrays). */
#define BASE64_LEN(n) ((n) / 3 * 4 + ((n) % 3 == 0 ? 0 : (n) % 3 + 1))

/* Encodes n bytes into out, which must hold BASE64_LEN(n) + 1 bytes. */
void base64_encode(const unsigned char *in, size_t n, enum base64_alphabet alphabet, char *out);

/* Strict decoding: only the alphabet's characters, no padding, no whitespace,
 * and the unused low bits of the last character zero. Returns false when the
 * input is not canonical or the output would exceed cap. */
bool base64_decode(const char *in, size_t len, enum base64_alphabet alphabet, unsigned char *out,
                   size_t cap, size_t *out_len);

#endif
