#ifndef SLIPWAY_CLIBYAML_SHIM_H
#define SLIPWAY_CLIBYAML_SHIM_H
#include <yaml.h>
#endif
