/* SPDX-License-Identifier: MIT */
#ifndef RP_UTIL_ERR_H
#define RP_UTIL_ERR_H

/* Fallible calls return 0 (or a count) on success and a negative code on failure: libuv's
 * codes (UV_ENOMEM... = -errno) or ours, from -1000 down. */
#define RP_EPROTO      (-1000) /* the peer broke the protocol */
#define RP_ETOOBIG     (-1001) /* a limit was passed */
#define RP_EAUTH       (-1002) /* refused by authentication */
#define RP_EINCOMPLETE (-1003) /* a decoder needs more bytes */
#define RP_ENOTFOUND   (-1004) /* no such session, room, ... */
#define RP_ESTATE      (-1005) /* the call does not fit the object's state */
#define RP_EINVAL      (-1006) /* the input is well-formed but a field is wrong */
#define RP_EREFUSED    (-1007) /* refused by policy: role, scope, rate, bound */
#define RP_EUNAVAIL    (-1008) /* a dependency (store, cluster, backend) is unavailable */

/* Returns a static name for `err` ("RP_EPROTO", "ENOMEM", ...); never NULL. */
const char *rp_err_name(int err);

#endif
