/* tests/abi/none.c -- no code of its own: the test library tapegen_exports
 * is libtapegen.a linked whole into a shared object, so that abi_exports
 * sees exactly what a shared build of the same objects exports. */
typedef int tests_abi_none_is_not_empty;
