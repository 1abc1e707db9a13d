/* SPDX-License-Identifier: MIT */
#ifndef RP_CLI_WEB_ASSETS_H
#define RP_CLI_WEB_ASSETS_H

#include "http/static.h"

/* The dashboard (web/), built by esbuild and embedded by rp-embed into web_assets.c in the
 * build directory (generated, never committed). Empty when built with -DRP_DASHBOARD=OFF. */
extern const rp_http_assets_t rp_cli_web_assets;

#endif
