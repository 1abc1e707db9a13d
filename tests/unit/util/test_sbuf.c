/* SPDX-License-Identifier: MIT */
/* util/sbuf: shared byte blocks. A new block has one reference and its bytes in the same
 * allocation; a copy holds exactly the bytes given; an adopted block frees the caller's memory
 * with its last reference, and leaves it to the caller when adoption fails; every reference
 * taken is given back once and the block goes with the last (ASan's leak check sees a block
 * freed too late, and a use after free one freed too early); static blocks are never counted
 * nor freed; sizes past 32 bits and failed allocations give NULL and leak nothing. */
#include "unit.h"

#include "util/alloc.h"
#include "util/sbuf.h"

static void new_block_has_one_reference_and_inline_room(void **state)
{
    (void)state;
    rp_sbuf_t *sb = rp_sbuf_new(100);
    assert_non_null(sb);
    assert_int_equal(sb->refs, 1);
    assert_int_equal(sb->len, 0);
    assert_int_equal(sb->cap, 100);
    /* Header and bytes are one allocation: the bytes follow the header. */
    assert_ptr_equal(sb->data, (char *)(sb + 1));
    memset(sb->data, 'x', 100); /* the whole capacity is writable (ASan checks) */
    rp_sbuf_unref(sb);
}

static void copy_holds_exactly_the_bytes(void **state)
{
    (void)state;
    char *src = dup_exact("hello\0world", 11);
    rp_sbuf_t *sb = rp_sbuf_new_copy(src, 11);
    assert_non_null(sb);
    assert_int_equal(sb->len, 11);
    assert_int_equal(sb->cap, 11);
    assert_bytes(sb->data, sb->len, "hello\0world", 11);
    src[0] = 'J'; /* a copy, not a view */
    assert_int_equal(sb->data[0], 'h');
    free(src);
    rp_sbuf_unref(sb);
    rp_sbuf_t *empty = rp_sbuf_new_copy(NULL, 0);
    assert_non_null(empty);
    assert_int_equal(empty->len, 0);
    rp_sbuf_unref(empty);
}

static void references_are_counted_and_the_last_frees(void **state)
{
    (void)state;
    rp_sbuf_t *sb = rp_sbuf_new_copy("abc", 3);
    assert_non_null(sb);
    assert_ptr_equal(rp_sbuf_ref(sb), sb);
    assert_ptr_equal(rp_sbuf_ref(sb), sb);
    assert_int_equal(sb->refs, 3);
    rp_sbuf_unref(sb);
    rp_sbuf_unref(sb);
    assert_int_equal(sb->refs, 1);
    assert_bytes(sb->data, sb->len, "abc", 3); /* still alive with one reference */
    rp_sbuf_unref(sb);                         /* freed: ASan reports a leak otherwise */
}

static void adopted_memory_goes_with_the_block(void **state)
{
    (void)state;
    char *data = rp_malloc(5);
    assert_non_null(data);
    memcpy(data, "bytes", 5);
    rp_sbuf_t *sb = rp_sbuf_adopt(data, 5);
    assert_non_null(sb);
    assert_ptr_equal(sb->data, data);
    assert_int_equal(sb->len, 5);
    assert_int_equal(sb->cap, 5);
    assert_int_equal(sb->refs, 1);
    rp_sbuf_ref(sb);
    rp_sbuf_unref(sb);
    rp_sbuf_unref(sb); /* frees data too: a leak otherwise */
}

static void failed_adoption_leaves_the_memory_to_the_caller(void **state)
{
    (void)state;
    char *data = rp_malloc(4);
    assert_non_null(data);
    assert_null(rp_sbuf_adopt(data, (size_t)UINT32_MAX + 1));
    rp_alloc_fail_at(1);
    assert_null(rp_sbuf_adopt(data, 4));
    assert_true(rp_alloc_failed());
    rp_alloc_fail_at(0);
    data[3] = 'z'; /* still the caller's (ASan: a use after free if adopt had freed it) */
    rp_free(data);
}

static void static_blocks_are_never_counted_nor_freed(void **state)
{
    (void)state;
    static rp_sbuf_t rs = RP_SBUF_STATIC("\x1e");
    assert_int_equal(rs.len, 1);
    assert_int_equal(rs.refs, 0);
    for (int i = 0; i < 3; i++)
        assert_ptr_equal(rp_sbuf_ref(&rs), &rs);
    assert_int_equal(rs.refs, 0);
    for (int i = 0; i < 5; i++)
        rp_sbuf_unref(&rs); /* freeing a static would crash under ASan */
    assert_int_equal(rs.refs, 0);
    assert_int_equal(rs.data[0], '\x1e');
}

static void sizes_past_32_bits_are_refused(void **state)
{
    (void)state;
    assert_null(rp_sbuf_new(UINT32_MAX));
    assert_null(rp_sbuf_new((size_t)UINT32_MAX - sizeof(rp_sbuf_t) + 1));
    assert_null(rp_sbuf_new(SIZE_MAX));
}

static void out_of_memory_gives_null(void **state)
{
    (void)state;
    rp_alloc_fail_at(1);
    assert_null(rp_sbuf_new(8));
    assert_true(rp_alloc_failed());
    rp_alloc_fail_at(1);
    assert_null(rp_sbuf_new_copy("abc", 3));
    rp_alloc_fail_at(0);
    rp_sbuf_t *sb = rp_sbuf_new_copy("abc", 3);
    assert_non_null(sb);
    rp_sbuf_unref(sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(new_block_has_one_reference_and_inline_room),
        cmocka_unit_test(copy_holds_exactly_the_bytes),
        cmocka_unit_test(references_are_counted_and_the_last_frees),
        cmocka_unit_test(adopted_memory_goes_with_the_block),
        cmocka_unit_test(failed_adoption_leaves_the_memory_to_the_caller),
        cmocka_unit_test(static_blocks_are_never_counted_nor_freed),
        cmocka_unit_test(sizes_past_32_bits_are_refused),
        cmocka_unit_test(out_of_memory_gives_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
