/* secretbox: what the webhooks need of OpenSSL: the signature of a delivery
 * (HMAC-SHA256) and the encryption at rest of the shared secrets that sign
 * them (AES-256-GCM under a key derived from the server's JWT secret with
 * HKDF-SHA256). Pure: no I/O, no globals. */
#ifndef WATTLINE_SECRETBOX_H
#define WATTLINE_SECRETBOX_H

#include <stdbool.h>
#include <stddef.h>

#define SECRETBOX_KEY_LEN   32
#define SECRETBOX_NONCE_LEN 12
#define SECRETBOX_TAG_LEN   16
/* What secretbox_seal adds to a plaintext. */
#define SECRETBOX_OVERHEAD (SECRETBOX_NONCE_LEN + SECRETBOX_TAG_LEN)

/* The key for purpose (a short label such as "webhook-secret-v1"), derived
 * from the server secret: a different purpose gives an unrelated key, so the
 * JWT signing key itself never encrypts anything. */
bool secretbox_derive_key(const void *server_secret, size_t len, const char *purpose,
                          unsigned char key[SECRETBOX_KEY_LEN]);

/* Encrypts plain[0..len) into out (len + SECRETBOX_OVERHEAD bytes):
 * nonce || ciphertext || tag, with a fresh random nonce. */
bool secretbox_seal(const unsigned char key[SECRETBOX_KEY_LEN], const void *plain, size_t len,
                    unsigned char *out);

/* Decrypts what secretbox_seal made (box[0..len)) into out (len -
 * SECRETBOX_OVERHEAD bytes); false when it was tampered with, or under
 * another key. */
bool secretbox_open(const unsigned char key[SECRETBOX_KEY_LEN], const unsigned char *box,
                    size_t len, unsigned char *out);

/* HMAC-SHA256 of data with key, as 64 lowercase hex characters plus NUL. */
#define SECRETBOX_HMAC_HEX_LEN 64
bool secretbox_hmac_sha256_hex(const void *key, size_t keylen, const void *data, size_t len,
                               char out[SECRETBOX_HMAC_HEX_LEN + 1]);

#endif
