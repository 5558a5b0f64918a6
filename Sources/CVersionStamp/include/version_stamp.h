#ifndef SLIPWAY_VERSION_STAMP_H
#define SLIPWAY_VERSION_STAMP_H

/// The version `slipway --version` prints: the upstream version as built, or the package's
/// (e.g. 0.1.0-2) once packaging/build-deb has stamped it into the binary. The array starts with
/// SLIPWAY_VERSION_STAMP_MARKER; the version follows it, NUL-terminated, in the rest of the
/// SLIPWAY_VERSION_STAMP_SIZE bytes. Defined in C so that no compiler folds it into its callers:
/// the bytes in the file are what runs.
#define SLIPWAY_VERSION_STAMP_MARKER "slipway-version-stamp:"
#define SLIPWAY_VERSION_STAMP_SIZE 96
extern const char slipway_version_stamp[SLIPWAY_VERSION_STAMP_SIZE];

/// The version itself (after the marker).
const char *slipway_version(void);

#endif
