#pragma once

#include <pybind11/pybind11.h>

// Adds runtime/observe's bindings (and the config's ObserveConfig) to _C.
void bindObserve(pybind11::module_& m);
