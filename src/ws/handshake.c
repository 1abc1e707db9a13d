/* SPDX-License-Identifier: MIT */
/* The opening handshake's Sec-WebSocket-Accept: base64(SHA-1(key + GUID)). */
#include <openssl/evp.h>
#include <string.h>

#include "util/base64.h"
#include "util/err.h"
#include "ws/ws.h"

int rp_ws_accept_key(const char *key, size_t keylen, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char raw[18];
    if (keylen != 24 || rp_base64_decode(key, keylen, raw) != 16)
        return RP_EPROTO;
    char buf[24 + sizeof(guid)];
    memcpy(buf, key, 24);
    memcpy(buf + 24, guid, sizeof(guid) - 1);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(buf, 24 + sizeof(guid) - 1, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20)
        return RP_EPROTO;
    size_t n = rp_base64_encode(md, 20, out);
    out[n] = '\0';
    return 0;
}
