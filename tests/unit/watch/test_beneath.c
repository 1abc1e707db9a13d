/* SPDX-License-Identifier: MIT */
/* watch/beneath: a path of the tree opens and stats as itself; a symbolic link as the last
 * component is -ELOOP to open and a link to stat; a link (to a folder outside, back up the
 * tree, or to a file) anywhere on the way is -ENOTDIR; ".." is refused; a directory swapped
 * for a link after a check still cannot be walked through. Each test builds its tree in a
 * fresh mkdtemp folder with a secret folder beside it. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "watch/beneath.h"

typedef struct tree {
    char base[64]; /* the scratch folder: root/ and outside/ */
    char root[96];
    int root_fd;
} tree_t;

static void mk(const tree_t *t, const char *rel, const char *text)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", t->base, rel);
    if (text == NULL) {
        assert_int_equal(mkdir(p, 0700), 0);
        return;
    }
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void ln(const tree_t *t, const char *target, const char *rel)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", t->base, rel);
    assert_int_equal(symlink(target, p), 0);
}

static int setup(void **state)
{
    tree_t *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    snprintf(t->base, sizeof(t->base), "/tmp/rp-beneath-XXXXXX");
    assert_non_null(mkdtemp(t->base));
    snprintf(t->root, sizeof(t->root), "%s/root", t->base);
    mk(t, "root", NULL);
    mk(t, "root/sub", NULL);
    mk(t, "root/sub/doc.txt", "inside");
    mk(t, "outside", NULL);
    mk(t, "outside/secret.txt", "secret");
    t->root_fd = open(t->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    assert_true(t->root_fd >= 0);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    tree_t *t = *state;
    close(t->root_fd);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->base);
    assert_int_equal(system(cmd), 0);
    free(t);
    return 0;
}

static void read_back(int fd, const char *want)
{
    char buf[64];
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    assert_true(n >= 0);
    assert_span(buf, (size_t)n, want);
}

static void opens_a_file_of_the_tree(void **state)
{
    tree_t *t = *state;
    read_back(rp_watch_open_beneath(t->root_fd, "sub/doc.txt", O_RDONLY), "inside");
    read_back(rp_watch_open_beneath(t->root_fd, "./sub//doc.txt", O_RDONLY), "inside");
    int d = rp_watch_open_beneath(t->root_fd, "", O_RDONLY | O_DIRECTORY);
    assert_true(d >= 0);
    close(d);
    struct stat st;
    assert_int_equal(rp_watch_stat_beneath(t->root_fd, "sub/doc.txt", &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(rp_watch_stat_beneath(t->root_fd, "sub", &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(rp_watch_open_beneath(t->root_fd, "sub/missing.txt", O_RDONLY), -ENOENT);
    assert_int_equal(rp_watch_stat_beneath(t->root_fd, "missing/doc.txt", &st), -ENOENT);
}

static void a_link_as_the_last_component_is_not_followed(void **state)
{
    tree_t *t = *state;
    char target[160];
    snprintf(target, sizeof(target), "%s/outside/secret.txt", t->base);
    ln(t, target, "root/secret.txt");
    ln(t, "sub/doc.txt", "root/alias.txt"); /* inside the tree: not followed either */
    assert_int_equal(rp_watch_open_beneath(t->root_fd, "secret.txt", O_RDONLY), -ELOOP);
    assert_int_equal(rp_watch_open_beneath(t->root_fd, "alias.txt", O_RDONLY), -ELOOP);
    struct stat st;
    assert_int_equal(rp_watch_stat_beneath(t->root_fd, "secret.txt", &st), 0);
    assert_true(S_ISLNK(st.st_mode));
}

static void a_link_on_the_way_ends_the_walk(void **state)
{
    tree_t *t = *state;
    char outside[160];
    snprintf(outside, sizeof(outside), "%s/outside", t->base);
    ln(t, outside, "root/out");
    ln(t, "..", "root/sub/up");
    ln(t, "/etc", "root/etc");
    ln(t, "loop-b", "root/loop-a");
    ln(t, "loop-a", "root/loop-b");
    struct stat st;
    assert_int_equal(rp_watch_open_beneath(t->root_fd, "out/secret.txt", O_RDONLY), -ENOTDIR);
    assert_int_equal(rp_watch_stat_beneath(t->root_fd, "out/secret.txt", &st), -ENOTDIR);
    assert_int_equal(rp_watch_open_beneath(t->root_fd, "sub/up/sub/doc.txt", O_RDONLY), -ENOTDIR);
    assert_int_equal(rp_watch_open_beneath(t->root_fd, "etc/passwd", O_RDONLY), -ENOTDIR);
    assert_int_equal(rp_watch_open_beneath(t->root_fd, "etc", O_RDONLY | O_DIRECTORY), -ENOTDIR);
    assert_int_equal(rp_watch_open_beneath(t->root_fd, "loop-a/x", O_RDONLY), -ENOTDIR);
    assert_int_equal(rp_watch_open_beneath(t->root_fd, "loop-a", O_RDONLY), -ELOOP);
    /* A file is not a directory on the way either. */
    assert_int_equal(rp_watch_open_beneath(t->root_fd, "sub/doc.txt/x", O_RDONLY), -ENOTDIR);
}

static void refuses_dot_dot(void **state)
{
    tree_t *t = *state;
    struct stat st;
    assert_int_equal(rp_watch_open_beneath(t->root_fd, "../outside/secret.txt", O_RDONLY), -EXDEV);
    assert_int_equal(rp_watch_open_beneath(t->root_fd, "sub/../../outside/secret.txt", O_RDONLY),
                     -EXDEV);
    assert_int_equal(rp_watch_stat_beneath(t->root_fd, "sub/..", &st), -EXDEV);
    char longname[NAME_MAX + 8];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(rp_watch_open_beneath(t->root_fd, longname, O_RDONLY), -ENAMETOOLONG);
}

static void a_folder_swapped_for_a_link_after_a_check_is_not_walked(void **state)
{
    tree_t *t = *state;
    struct stat st;
    assert_int_equal(rp_watch_stat_beneath(t->root_fd, "sub/doc.txt", &st), 0);
    /* The check passed; now sub/ becomes a link to the folder outside, as in a race. */
    char p[160], q[160], outside[160];
    snprintf(p, sizeof(p), "%s/sub", t->root);
    snprintf(q, sizeof(q), "%s/moved", t->root);
    snprintf(outside, sizeof(outside), "%s/outside", t->base);
    assert_int_equal(rename(p, q), 0);
    assert_int_equal(symlink(outside, p), 0);
    mk(t, "outside/doc.txt", "outside");
    assert_int_equal(rp_watch_open_beneath(t->root_fd, "sub/doc.txt", O_RDONLY), -ENOTDIR);
    read_back(rp_watch_open_beneath(t->root_fd, "moved/doc.txt", O_RDONLY), "inside");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(opens_a_file_of_the_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(a_link_as_the_last_component_is_not_followed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_link_on_the_way_ends_the_walk, setup, teardown),
        cmocka_unit_test_setup_teardown(refuses_dot_dot, setup, teardown),
        cmocka_unit_test_setup_teardown(a_folder_swapped_for_a_link_after_a_check_is_not_walked,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
