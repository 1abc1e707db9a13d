/* SPDX-License-Identifier: MIT */
/* Socket.IO packet codec. Input is outside input: every index is checked against n. */
#include "sio/packet.h"

#include <string.h>

#include "util/err.h"
#include "util/json.h"

static const char *const reserved_events[] = {
    "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener",
};

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* First non-space character of a JSON value. */
static char first_char(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return s[i];
    return '\0';
}

static int event_payload_ok(const char *data, size_t len)
{
    rp_json_iter_t it;
    const char *el;
    size_t el_len;
    if (rp_json_array_begin(&it, data, len) < 0 || rp_json_array_next(&it, &el, &el_len) != 1)
        return 0;
    if (el[0] == '"') {
        /* Compare the decoded name: "\u0063onnect" is "connect" too. */
        const char *name = el + 1;
        size_t nlen = el_len - 2;
        rp_buf_t dec;
        rp_buf_init(&dec, 64);
        if (memchr(el, '\\', el_len)) {
            int rc = rp_json_string_decode(el, el_len, &dec);
            if (rc < 0) {
                /* Past the 64-byte limit: longer than any reserved name, fine. Anything else
                 * (out of memory) refuses the packet rather than guess. */
                rp_buf_deinit(&dec);
                return rc == RP_ETOOBIG;
            }
            name = dec.data ? dec.data : "";
            nlen = dec.len;
        }
        int ok = 1;
        for (size_t i = 0; i < sizeof(reserved_events) / sizeof(*reserved_events); i++) {
            size_t rl = strlen(reserved_events[i]);
            if (nlen == rl && memcmp(name, reserved_events[i], rl) == 0)
                ok = 0;
        }
        rp_buf_deinit(&dec);
        return ok;
    }
    return el[0] == '-' || is_digit(el[0]);
}

int rp_sio_packet_decode(const char *s, size_t n, unsigned max_attachments, rp_sio_packet_t *p)
{
    size_t i = 0;
    if (n == 0 || !is_digit(s[0]) || s[0] > '6')
        return RP_EPROTO;
    p->type = s[0] - '0';
    p->attachments = 0;
    p->nsp = "/";
    p->nsp_len = 1;
    p->id = -1;
    p->data = NULL;
    p->data_len = 0;
    i = 1;
    if (p->type == RP_SIO_BINARY_EVENT || p->type == RP_SIO_BINARY_ACK) {
        size_t start = i;
        unsigned long att = 0;
        while (i < n && is_digit(s[i]) && i - start < 6)
            att = att * 10 + (unsigned long)(s[i++] - '0');
        /* socket.io-parser refuses a count below 1 ("Illegal attachments"). */
        if (i == start || i >= n || s[i] != '-' || att == 0 || att > max_attachments)
            return RP_EPROTO;
        p->attachments = (unsigned)att;
        i++;
    }
    if (i < n && s[i] == '/') {
        size_t start = i;
        while (i < n && s[i] != ',')
            i++;
        if (i - start > RP_SIO_MAX_NSP)
            return RP_EPROTO;
        p->nsp = s + start;
        p->nsp_len = i - start;
        if (i < n)
            i++; /* the comma */
    }
    if (i < n && is_digit(s[i])) {
        int64_t id = 0;
        size_t start = i;
        while (i < n && is_digit(s[i])) {
            if (i - start >= 15)
                return RP_EPROTO;
            id = id * 10 + (s[i++] - '0');
        }
        p->id = id;
    }
    if (i < n) {
        p->data = s + i;
        p->data_len = n - i;
        if (rp_json_validate(p->data, p->data_len) < 0)
            return RP_EPROTO;
    }
    char c = p->data ? first_char(p->data, p->data_len) : '\0';
    switch (p->type) {
    case RP_SIO_CONNECT:
        return c == '\0' || c == '{' ? 0 : RP_EPROTO;
    case RP_SIO_DISCONNECT:
        return c == '\0' ? 0 : RP_EPROTO;
    case RP_SIO_CONNECT_ERROR:
        return c == '"' || c == '{' ? 0 : RP_EPROTO;
    case RP_SIO_EVENT:
    case RP_SIO_BINARY_EVENT:
        return c == '[' && event_payload_ok(p->data, p->data_len) ? 0 : RP_EPROTO;
    default: /* ACK, BINARY_ACK */
        return c == '[' ? 0 : RP_EPROTO;
    }
}

int rp_sio_packet_encode_header(rp_buf_t *b, int type, unsigned attachments, const char *nsp,
                                size_t nsp_len, int64_t id)
{
    int rc = rp_buf_append_char(b, (char)('0' + type));
    if (rc == 0 && (type == RP_SIO_BINARY_EVENT || type == RP_SIO_BINARY_ACK))
        rc = rp_buf_printf(b, "%u-", attachments);
    if (rc == 0 && !(nsp_len == 1 && nsp[0] == '/')) {
        rc = rp_buf_append(b, nsp, nsp_len);
        if (rc == 0)
            rc = rp_buf_append_char(b, ',');
    }
    if (rc == 0 && id >= 0)
        rc = rp_buf_printf(b, "%lld", (long long)id);
    return rc;
}

/* Returns the span of everything after the first `skip` elements, up to the last element. */
static int tail_of(const char *data, size_t len, int skip, const char **first, size_t *first_len,
                   const char **args, size_t *args_len)
{
    rp_json_iter_t it;
    const char *el;
    size_t el_len;
    const char *start = NULL;
    const char *end = NULL;
    int k = 0;
    int rc;
    if (rp_json_array_begin(&it, data, len) < 0)
        return RP_EPROTO;
    while ((rc = rp_json_array_next(&it, &el, &el_len)) == 1) {
        if (k < skip) {
            *first = el;
            *first_len = el_len;
        } else {
            if (start == NULL)
                start = el;
            end = el + el_len;
        }
        k++;
    }
    if (rc < 0 || k < skip)
        return RP_EPROTO;
    *args = start ? start : "";
    *args_len = start ? (size_t)(end - start) : 0;
    return 0;
}

int rp_sio_event_split(const char *data, size_t len, const char **name, size_t *name_len,
                       const char **args, size_t *args_len)
{
    return tail_of(data, len, 1, name, name_len, args, args_len);
}

int rp_sio_ack_args(const char *data, size_t len, const char **args, size_t *args_len)
{
    const char *unused = NULL;
    size_t unused_len = 0;
    return tail_of(data, len, 0, &unused, &unused_len, args, args_len);
}
