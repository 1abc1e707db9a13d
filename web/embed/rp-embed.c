/* SPDX-License-Identifier: MIT */
/* rp-embed: the build-time generator that turns the built dashboard (a directory: index.html
 * and assets/) into a C file holding every file as a byte array, with its URL path, content
 * type, a strong ETag (64-bit FNV-1a of the bytes) and, when it saves at least 10%, a gzip
 * variant made with zlib. The output defines one rp_http_assets_t named by the caller; nothing
 * is read at run time, so the binary needs no files beside it. Build-time tool only: errors
 * print a message and exit non-zero. Output is deterministic (files sorted by path). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

typedef struct file {
    char url[1024]; /* "/assets/app-X.js" */
    char path[2048];
} file_t;

static file_t files[256];
static size_t nfiles;

static int collect(const char *root, const char *rel)
{
    char dir[2048];
    snprintf(dir, sizeof(dir), "%s%s", root, rel);
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "rp-embed: cannot open %s\n", dir);
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char sub[1024];
        struct stat st;
        int n = snprintf(sub, sizeof(sub), "%s/%s", rel, e->d_name);
        if (n < 0 || (size_t)n >= sizeof(sub))
            continue;
        char full[2048];
        snprintf(full, sizeof(full), "%s%s", root, sub);
        if (stat(full, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (collect(root, sub) < 0) {
                closedir(d);
                return -1;
            }
        } else if (S_ISREG(st.st_mode)) {
            if (nfiles == sizeof(files) / sizeof(files[0])) {
                fprintf(stderr, "rp-embed: too many files\n");
                closedir(d);
                return -1;
            }
            snprintf(files[nfiles].url, sizeof(files[nfiles].url), "%s", sub);
            snprintf(files[nfiles].path, sizeof(files[nfiles].path), "%s", full);
            nfiles++;
        }
    }
    closedir(d);
    return 0;
}

static int by_url(const void *a, const void *b)
{
    return strcmp(((const file_t *)a)->url, ((const file_t *)b)->url);
}

static const char *content_type(const char *url)
{
    static const char *const map[][2] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".json", "application/json"},
        {".txt", "text/plain; charset=utf-8"},
        {".woff2", "font/woff2"},
    };
    const char *dot = strrchr(url, '.');
    for (size_t i = 0; dot && i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(dot, map[i][0]) == 0)
            return map[i][1];
    return "application/octet-stream";
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            unsigned char *nb = realloc(buf, cap);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    *len = n;
    return buf;
}

/* gzip (not zlib) framing, no name or time in the header: the same input gives the same bytes. */
static unsigned char *gzip(const unsigned char *in, size_t len, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    size_t cap = deflateBound(&z, (uLong)len) + 32;
    unsigned char *out = malloc(cap);
    if (out == NULL) {
        deflateEnd(&z);
        return NULL;
    }
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    *out_len = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

static void emit_bytes(FILE *o, const char *name, const unsigned char *b, size_t n)
{
    fprintf(o, "static const unsigned char %s[%zu] = {", name, n ? n : 1);
    for (size_t i = 0; i < n; i++)
        fprintf(o, "%s%u,", i % 24 ? "" : "\n", b[i]);
    if (n == 0)
        fputs("0", o);
    fputs("\n};\n", o);
}

/* URL paths come from our own build output; refuse anything a C string literal would need
 * escaping for rather than escape it. */
static int plain(const char *s)
{
    for (; *s; s++)
        if (*s < 0x21 || *s > 0x7e || *s == '"' || *s == '\\')
            return 0;
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr,
                "usage: rp-embed OUTPUT.c SYMBOL DIR   (DIR may be missing: an empty table)\n");
        return 2;
    }
    const char *out_path = argv[1], *sym = argv[2], *root = argv[3];
    struct stat st;
    if (stat(root, &st) == 0 && collect(root, "") < 0)
        return 1;
    qsort(files, nfiles, sizeof(files[0]), by_url);
    char tmp[1100];
    snprintf(tmp, sizeof(tmp), "%s.tmp", out_path);
    FILE *o = fopen(tmp, "w");
    if (o == NULL) {
        fprintf(stderr, "rp-embed: cannot write %s\n", tmp);
        return 1;
    }
    fprintf(o,
            "/* Generated by rp-embed from %s: do not edit, do not commit. */\n"
            "#include \"http/static.h\"\n\n",
            root);
    uint64_t etags[256];
    int has_gz[256];
    size_t lens[256], gz_lens[256];
    for (size_t i = 0; i < nfiles; i++) {
        if (!plain(files[i].url)) {
            fprintf(stderr, "rp-embed: unusual file name %s\n", files[i].url);
            fclose(o);
            return 1;
        }
        size_t len, gz_len = 0;
        unsigned char *data = slurp(files[i].path, &len);
        if (data == NULL) {
            fprintf(stderr, "rp-embed: cannot read %s\n", files[i].path);
            fclose(o);
            return 1;
        }
        uint64_t h = 1469598103934665603ull;
        for (size_t k = 0; k < len; k++) {
            h ^= data[k];
            h *= 1099511628211ull;
        }
        etags[i] = h;
        lens[i] = len;
        char name[32];
        snprintf(name, sizeof(name), "asset_%zu", i);
        emit_bytes(o, name, data, len);
        unsigned char *gz = gzip(data, len, &gz_len);
        has_gz[i] = gz && gz_len < len - len / 10;
        gz_lens[i] = gz_len;
        if (has_gz[i]) {
            snprintf(name, sizeof(name), "asset_%zu_gz", i);
            emit_bytes(o, name, gz, gz_len);
        }
        free(gz);
        free(data);
    }
    if (nfiles)
        fprintf(o, "\nstatic const rp_http_asset_t items[] = {\n");
    for (size_t i = 0; i < nfiles; i++) {
        const char *url = files[i].url;
        /* Names with a content hash (app-ABCD1234.js) never change: cache them for good. */
        const char *base = strrchr(url, '/');
        int immutable = strncmp(url, "/assets/", 8) == 0 && base && strchr(base, '-') != NULL;
        char gz[96];
        if (has_gz[i])
            snprintf(gz, sizeof(gz), "asset_%zu_gz, %zu", i, gz_lens[i]);
        else
            snprintf(gz, sizeof(gz), "NULL, 0");
        fprintf(o, "    {\"%s\", \"%s\", asset_%zu, %zu, %s, \"\\\"%016llx\\\"\", %d},\n",
                strcmp(url, "/index.html") == 0 ? "/" : url, content_type(url), i, lens[i], gz,
                (unsigned long long)etags[i], immutable);
    }
    if (nfiles)
        fprintf(o, "};\n\n");
    fprintf(o, "const rp_http_assets_t %s = {%s, %zu};\n", sym, nfiles ? "items" : "NULL", nfiles);
    if (fclose(o) != 0 || rename(tmp, out_path) != 0) {
        fprintf(stderr, "rp-embed: cannot write %s\n", out_path);
        return 1;
    }
    return 0;
}
