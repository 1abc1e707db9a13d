/* SPDX-License-Identifier: MIT */
/* Names for error codes: ours, then libuv's for the rest. */
#include "util/err.h"

#include <uv.h>

const char *rp_err_name(int err)
{
    switch (err) {
    case 0:
        return "OK";
    case RP_EPROTO:
        return "RP_EPROTO";
    case RP_ETOOBIG:
        return "RP_ETOOBIG";
    case RP_EAUTH:
        return "RP_EAUTH";
    case RP_EINCOMPLETE:
        return "RP_EINCOMPLETE";
    case RP_ENOTFOUND:
        return "RP_ENOTFOUND";
    case RP_ESTATE:
        return "RP_ESTATE";
    case RP_EINVAL:
        return "RP_EINVAL";
    case RP_EREFUSED:
        return "RP_EREFUSED";
    case RP_EUNAVAIL:
        return "RP_EUNAVAIL";
    default:
        return err < 0 && err > -4096 ? uv_err_name(err) : "unknown error";
    }
}
