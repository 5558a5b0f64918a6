#include "version_stamp.h"

// The upstream version. packaging/build-deb writes the package's version over it, in place.
__attribute__((used)) const char slipway_version_stamp[SLIPWAY_VERSION_STAMP_SIZE] = SLIPWAY_VERSION_STAMP_MARKER "0.1.0";

const char *slipway_version(void) {
    return slipway_version_stamp + sizeof(SLIPWAY_VERSION_STAMP_MARKER) - 1;
}
