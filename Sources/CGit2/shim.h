#ifndef SLIPWAY_CGIT2_SHIM_H
#define SLIPWAY_CGIT2_SHIM_H
#include <git2.h>

/* git_libgit2_opts is C-variadic, which Swift cannot call: wrap the options Slipway sets. */
static inline int slipway_git_set_owner_validation(int enabled) {
    return git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, enabled);
}
#endif
