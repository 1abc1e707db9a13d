/* SPDX-License-Identifier: MIT */
/* Codecs of the @socket.io/redis-streams-adapter wire (stream entries, BROADCAST data,
 * recovery sessions), see entry.h. JSON is scanned with util/json.c and never turned into a
 * tree: a relayed event's arguments are forwarded as the bytes another server wrote. Every
 * decoded string lands in one bounded names buffer whose pointers are fixed up at the end, so
 * a growing buffer never leaves a dangling pointer. */
#include "cluster/entry.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "util/base64.h"
#include "util/err.h"
#include "util/json.h"
#include "util/utf8.h"

static int field_is(const char *f, size_t n, const char *name)
{
    return strlen(name) == n && memcmp(f, name, n) == 0;
}

static int parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 19)
        return RP_EPROTO;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return RP_EPROTO;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

int rp_redis_entry_decode(const char *const *fields, const size_t *lens, size_t n,
                          rp_redis_entry_t *e)
{
    memset(e, 0, sizeof(*e));
    e->type = -1;
    for (size_t k = 0; k < n; k++) {
        const char *f = fields[2 * k], *v = fields[2 * k + 1];
        size_t fl = lens[2 * k], vl = lens[2 * k + 1];
        uint64_t u;
        if (field_is(f, fl, "uid")) {
            e->uid = v;
            e->uid_len = vl;
        } else if (field_is(f, fl, "nsp")) {
            e->nsp = v;
            e->nsp_len = vl;
        } else if (field_is(f, fl, "type")) {
            if (parse_u64(v, vl, &u) < 0 || u > 1000)
                return RP_EPROTO;
            e->type = (int)u;
        } else if (field_is(f, fl, "data")) {
            e->data = v;
            e->data_len = vl;
        } else if (field_is(f, fl, "rpid") || field_is(f, fl, "rpts") || field_is(f, fl, "rpt")) {
            if (parse_u64(v, vl, &u) < 0)
                return RP_EPROTO;
            if (fl == 4 && f[2] == 'i')
                e->rpid = (int64_t)(u & INT64_MAX);
            else if (fl == 4)
                e->rpts = (int64_t)(u & INT64_MAX);
            else
                e->ticket = u;
        }
    }
    if (e->uid == NULL || e->nsp == NULL || e->type < 0 || e->nsp_len == 0 || e->nsp[0] != '/' ||
        memchr(e->nsp, '\0', e->nsp_len))
        return RP_EPROTO;
    /* The namespace goes into JSON and packets: UTF-8 only. */
    rp_utf8_t u;
    rp_utf8_init(&u);
    if (rp_utf8_feed(&u, (const unsigned char *)e->nsp, e->nsp_len) < 0 || !rp_utf8_complete(&u))
        return RP_EPROTO;
    return 0;
}

/* Decodes the JSON string array text s into names; records each string's offset in offs. */
static int decode_names(const char *s, size_t n, rp_buf_t *names, size_t *offs, size_t *count)
{
    rp_json_iter_t it;
    const char *el;
    size_t elen;
    int rc = rp_json_array_begin(&it, s, n);
    *count = 0;
    while (rc == 0 && (rc = rp_json_array_next(&it, &el, &elen)) == 1) {
        if (*count == RP_REDIS_MAX_ROOMS || el[0] != '"')
            return RP_EPROTO;
        offs[(*count)++] = names->len;
        if ((rc = rp_json_string_decode(el, elen, names)) < 0 ||
            (rc = rp_buf_append_char(names, '\0')) < 0)
            return rc;
        rc = 0;
    }
    return rc < 0 ? rc : 0;
}

int rp_redis_bcast_decode(const char *data, size_t len, const char *nsp, size_t nsp_len,
                          rp_buf_t *names, rp_redis_bcast_t *b)
{
    const char *packet, *opts, *v;
    size_t plen, olen, vlen;
    memset(b, 0, sizeof(*b));
    rp_buf_reset(names);
    if (rp_json_validate(data, len) < 0 ||
        rp_json_object_get(data, len, "packet", &packet, &plen) != 1 ||
        rp_json_object_get(data, len, "opts", &opts, &olen) != 1)
        return RP_EPROTO;
    b->with_ack = rp_json_object_get(data, len, "requestId", &v, &vlen) == 1 ||
                  rp_json_object_get(packet, plen, "id", &v, &vlen) == 1;
    /* A plain event packet (type 2) of this namespace. */
    if (rp_json_object_get(packet, plen, "type", &v, &vlen) != 1 || vlen != 1 || v[0] != '2')
        return RP_EPROTO;
    /* The namespace is the entry's; a packet that names one (ragpulse's do) must agree. */
    int rc = rp_json_object_get(packet, plen, "nsp", &v, &vlen);
    if (rc == 1) {
        if (v[0] != '"' || (rc = rp_json_string_decode(v, vlen, names)) < 0)
            return rc < 0 ? rc : RP_EPROTO;
        if (names->len != nsp_len || memcmp(names->data, nsp, nsp_len) != 0)
            return RP_EPROTO;
        rp_buf_reset(names);
    } else if (rc < 0) {
        return RP_EPROTO;
    }
    if (rp_json_object_get(packet, plen, "data", &b->args, &b->args_len) != 1 || b->args[0] != '[')
        return RP_EPROTO;
    rp_json_iter_t it;
    const char *el;
    size_t elen;
    if (rp_json_array_begin(&it, b->args, b->args_len) < 0 ||
        rp_json_array_next(&it, &el, &elen) != 1 || el[0] != '"')
        return RP_EPROTO;
    size_t name_off = 0;
    if ((rc = rp_json_string_decode(el, elen, names)) < 0 ||
        (rc = rp_buf_append_char(names, '\0')) < 0)
        return rc;
    rc = rp_json_array_next(&it, &el, &elen);
    if (rc < 0)
        return RP_EPROTO;
    if (rc == 1) {
        b->first = el;
        b->first_len = elen;
    }
    size_t room_offs[RP_REDIS_MAX_ROOMS], except_offs[RP_REDIS_MAX_ROOMS];
    if (rp_json_object_get(opts, olen, "rooms", &v, &vlen) == 1 &&
        (rc = decode_names(v, vlen, names, room_offs, &b->nrooms)) < 0)
        return rc;
    if (rp_json_object_get(opts, olen, "except", &v, &vlen) == 1 &&
        (rc = decode_names(v, vlen, names, except_offs, &b->nexcept)) < 0)
        return rc;
    b->name = names->data + name_off;
    for (size_t i = 0; i < b->nrooms; i++)
        b->rooms[i] = names->data + room_offs[i];
    for (size_t i = 0; i < b->nexcept; i++)
        b->except[i] = names->data + except_offs[i];
    return 0;
}

static int append_names(rp_buf_t *out, const char *const *names, size_t n)
{
    int rc = rp_buf_append_char(out, '[');
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i)
            rc = rp_buf_append_char(out, ',');
        if (rc == 0)
            rc = rp_json_string_encode(out, names[i], strlen(names[i]));
    }
    return rc ? rc : rp_buf_append_char(out, ']');
}

int rp_redis_bcast_encode(rp_buf_t *out, const char *nsp, size_t nsp_len, const char *args,
                          size_t args_len, const char *const *rooms, size_t nrooms,
                          const char *const *except, size_t nexcept)
{
    int rc = rp_buf_append_str(out, "{\"packet\":{\"type\":2,\"data\":");
    rc = rc ? rc : rp_buf_append(out, args, args_len);
    rc = rc ? rc : rp_buf_append_str(out, ",\"nsp\":");
    rc = rc ? rc : rp_json_string_encode(out, nsp, nsp_len);
    rc = rc ? rc : rp_buf_append_str(out, "},\"opts\":{\"rooms\":");
    rc = rc ? rc : append_names(out, rooms, rooms ? nrooms : 0);
    rc = rc ? rc : rp_buf_append_str(out, ",\"except\":");
    rc = rc ? rc : append_names(out, except, nexcept);
    return rc ? rc : rp_buf_append_str(out, ",\"flags\":{}}}");
}

/* ---- sessions: base64(msgpack {sid, pid, rooms, data, nsp}) ---- */

static int mp_str_is(const msgpack_object *o, const char *s)
{
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
           memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

static int put_str(rp_buf_t *names, const msgpack_object *o, size_t *off)
{
    if (o->type != MSGPACK_OBJECT_STR || memchr(o->via.str.ptr, '\0', o->via.str.size))
        return RP_EPROTO;
    *off = names->len;
    int rc = rp_buf_append(names, o->via.str.ptr, o->via.str.size);
    return rc ? rc : rp_buf_append_char(names, '\0');
}

/* msgpack-c allocates a container's slots from its declared count before reading them: a
 * few bytes declaring 2^31 entries would ask for gigabytes. This walk checks every count
 * against the bytes left (each element takes at least one) before msgpack-c sees the data. */
static int mp_sane(const unsigned char *p, size_t n)
{
    size_t pending = 1, i = 0;
    while (pending > 0) {
        if (i >= n)
            return RP_EPROTO;
        unsigned char c = p[i++];
        size_t skip = 0, count = 0;
        pending--;
        if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
            skip = 0;
        } else if ((c & 0xe0) == 0xa0) {
            skip = c & 0x1f;
        } else if ((c & 0xf0) == 0x90 || (c & 0xf0) == 0x80) {
            count = (size_t)(c & 0x0f) * ((c & 0xf0) == 0x80 ? 2 : 1);
        } else {
            static const unsigned char fixed[] = {
                [0xcc - 0xc4] = 1, [0xcd - 0xc4] = 2, [0xce - 0xc4] = 4, [0xcf - 0xc4] = 8,
                [0xd0 - 0xc4] = 1, [0xd1 - 0xc4] = 2, [0xd2 - 0xc4] = 4, [0xd3 - 0xc4] = 8,
                [0xca - 0xc4] = 4, [0xcb - 0xc4] = 8};
            size_t lenb = 0;
            if (c == 0xc4 || c == 0xd9)
                lenb = 1;
            else if (c == 0xc5 || c == 0xda || c == 0xdc || c == 0xde)
                lenb = 2;
            else if (c == 0xc6 || c == 0xdb || c == 0xdd || c == 0xdf)
                lenb = 4;
            else if (c >= 0xc4 && c <= 0xd3 && fixed[c - 0xc4])
                skip = fixed[c - 0xc4];
            else
                return RP_EPROTO; /* ext types and the unused byte: not in a session */
            if (lenb) {
                if (n - i < lenb)
                    return RP_EPROTO;
                size_t v = 0;
                for (size_t k = 0; k < lenb; k++)
                    v = v << 8 | p[i + k];
                i += lenb;
                if (c >= 0xdc)
                    count = c >= 0xde ? v * 2 : v;
                else
                    skip = v;
            }
        }
        if (skip > n - i || count > n - i || pending + count > n)
            return RP_EPROTO;
        i += skip;
        pending += count;
    }
    return 0;
}

int rp_redis_session_decode(const char *b64, size_t len, rp_buf_t *names, rp_redis_session_t *s)
{
    memset(s, 0, sizeof(*s));
    rp_buf_reset(names);
    if (len == 0 || len > 65536)
        return RP_EPROTO;
    unsigned char *bin = malloc(len / 4 * 3 + 1);
    if (bin == NULL)
        return UV_ENOMEM;
    long n = rp_base64_decode(b64, len, bin);
    if (n <= 0) {
        free(bin);
        return RP_EPROTO;
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t used = 0;
    int rc = RP_EPROTO;
    size_t sid = 0, pid = 0, nsp = 0, rooms[RP_REDIS_MAX_ROOMS];
    int have_sid = 0, have_pid = 0, have_nsp = 0;
    if (mp_sane(bin, (size_t)n) < 0 ||
        msgpack_unpack_next(&u, (const char *)bin, (size_t)n, &used) != MSGPACK_UNPACK_SUCCESS ||
        u.data.type != MSGPACK_OBJECT_MAP)
        goto done;
    const msgpack_object_map *m = &u.data.via.map;
    rc = 0;
    for (uint32_t i = 0; i < m->size && rc == 0; i++) {
        const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
        /* A key twice is not a session anyone wrote. */
        for (uint32_t j = 0; j < i && rc == 0; j++)
            if (k->type == MSGPACK_OBJECT_STR && m->ptr[j].key.type == MSGPACK_OBJECT_STR &&
                k->via.str.size == m->ptr[j].key.via.str.size &&
                memcmp(k->via.str.ptr, m->ptr[j].key.via.str.ptr, k->via.str.size) == 0)
                rc = RP_EPROTO;
        if (rc < 0)
            break;
        if (mp_str_is(k, "sid")) {
            rc = put_str(names, v, &sid);
            have_sid = rc == 0;
        } else if (mp_str_is(k, "pid")) {
            rc = put_str(names, v, &pid);
            have_pid = rc == 0;
        } else if (mp_str_is(k, "nsp")) {
            rc = put_str(names, v, &nsp);
            have_nsp = rc == 0;
        } else if (mp_str_is(k, "rooms")) {
            if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size > RP_REDIS_MAX_ROOMS) {
                rc = RP_EPROTO;
                break;
            }
            s->nrooms = v->via.array.size;
            for (uint32_t r = 0; r < v->via.array.size && rc == 0; r++)
                rc = put_str(names, &v->via.array.ptr[r], &rooms[r]);
        }
    }
    if (rc == 0 && (!have_sid || !have_pid))
        rc = RP_EPROTO;
    if (rc == 0 && !have_nsp) {
        nsp = names->len;
        rc = rp_buf_append_char(names, '\0');
    }
    if (rc == 0) {
        s->sid = names->data + sid;
        s->pid = names->data + pid;
        s->nsp = names->data + nsp;
        for (size_t r = 0; r < s->nrooms; r++)
            s->rooms[r] = names->data + rooms[r];
    } else {
        s->nrooms = 0;
    }
done:
    msgpack_unpacked_destroy(&u);
    free(bin);
    return rc;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

int rp_redis_session_encode(rp_buf_t *out, const char *pid, const char *sid, const char *nsp,
                            const char *const *rooms, size_t nrooms)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 5);
    pack_str(&pk, "sid");
    pack_str(&pk, sid);
    pack_str(&pk, "pid");
    pack_str(&pk, pid);
    pack_str(&pk, "rooms");
    msgpack_pack_array(&pk, nrooms);
    for (size_t i = 0; i < nrooms; i++)
        pack_str(&pk, rooms[i]);
    pack_str(&pk, "data");
    msgpack_pack_map(&pk, 0);
    pack_str(&pk, "nsp");
    pack_str(&pk, nsp);
    int rc = sb.data ? rp_buf_reserve(out, rp_base64_encoded_len(sb.size) + 1) : UV_ENOMEM;
    if (rc == 0)
        out->len += rp_base64_encode((const unsigned char *)sb.data, sb.size, out->data + out->len);
    if (rc == 0)
        out->data[out->len] = '\0';
    msgpack_sbuffer_destroy(&sb);
    return rc;
}
