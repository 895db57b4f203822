#include "secretbox.h"

#include <limits.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "crypto.h"

bool secretbox_derive_key(const void *server_secret, size_t len, const char *purpose,
                          unsigned char key[SECRETBOX_KEY_LEN])
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    bool ok = false;
    if (ctx) {
        /* A fixed salt: the input is already a high-entropy secret, and the
         * derivation must give the same key on every instance. */
        static const char salt[] = "wattline";
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)server_secret, len),
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, sizeof salt - 1),
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)purpose,
                                              strlen(purpose)),
            OSSL_PARAM_construct_end(),
        };
        ok = EVP_KDF_derive(ctx, key, SECRETBOX_KEY_LEN, params) == 1;
    }
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return ok;
}

bool secretbox_seal(const unsigned char key[SECRETBOX_KEY_LEN], const void *plain, size_t len,
                    unsigned char *out)
{
    if (len > INT_MAX - SECRETBOX_OVERHEAD || !crypto_random(out, SECRETBOX_NONCE_LEN))
        return false;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    unsigned char *body = out + SECRETBOX_NONCE_LEN;
    int n = 0, fin = 0;
    bool ok = ctx && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, out) == 1 &&
              EVP_EncryptUpdate(ctx, body, &n, plain, (int)len) == 1 &&
              EVP_EncryptFinal_ex(ctx, body + n, &fin) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SECRETBOX_TAG_LEN, body + len) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

bool secretbox_open(const unsigned char key[SECRETBOX_KEY_LEN], const unsigned char *box,
                    size_t len, unsigned char *out)
{
    if (len < SECRETBOX_OVERHEAD || len > INT_MAX)
        return false;
    size_t plain_len = len - SECRETBOX_OVERHEAD;
    const unsigned char *body = box + SECRETBOX_NONCE_LEN;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0;
    bool ok = ctx && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, box) == 1 &&
              EVP_DecryptUpdate(ctx, out, &n, body, (int)plain_len) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SECRETBOX_TAG_LEN,
                                  (void *)(body + plain_len)) == 1 &&
              EVP_DecryptFinal_ex(ctx, out + n, &fin) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

bool secretbox_hmac_sha256_hex(const void *key, size_t keylen, const void *data, size_t len,
                               char out[SECRETBOX_HMAC_HEX_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[32];
    unsigned int mdlen = 0;
    out[0] = '\0';
    if (keylen > INT_MAX || !HMAC(EVP_sha256(), key, (int)keylen, data, len, md, &mdlen) ||
        mdlen != sizeof md)
        return false;
    for (size_t i = 0; i < sizeof md; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0x0f];
    }
    out[SECRETBOX_HMAC_HEX_LEN] = '\0';
    return true;
}
