#ifndef SLIPWAY_CGIT2_SHIM_H
#define SLIPWAY_CGIT2_SHIM_H
#include <git2.h>
#include <git2/sys/repository.h> /* git_repository_new: an in-memory repository for listing a remote */

/* git_libgit2_opts is C-variadic, which Swift cannot call: wrap the options Slipway sets. */
static inline int slipway_git_set_owner_validation(int enabled) {
    return git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, enabled);
}

/* The CA bundle https remotes are checked against (mbedTLS replaces its chain with this file). */
static inline int slipway_git_set_ssl_cert_file(const char *file) {
    return git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS, file, (const char *)0);
}
#endif
