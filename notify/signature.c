#include "signature.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/secretbox.h"

bool signature_header(const char *secret, size_t secret_len, long long t, const char *body,
                      size_t len, char out[SIGNATURE_MAX])
{
    char prefix[24];
    int plen = snprintf(prefix, sizeof prefix, "%lld.", t);
    char *signed_text = malloc((size_t)plen + len + 1);
    char hex[SECRETBOX_HMAC_HEX_LEN + 1];
    out[0] = '\0';
    if (!signed_text)
        return false;
    memcpy(signed_text, prefix, (size_t)plen);
    memcpy(signed_text + plen, body, len);
    bool ok = secretbox_hmac_sha256_hex(secret, secret_len, signed_text, (size_t)plen + len, hex);
    free(signed_text);
    if (ok)
        snprintf(out, SIGNATURE_MAX, "t=%lld,v1=%s", t, hex);
    return ok;
}
