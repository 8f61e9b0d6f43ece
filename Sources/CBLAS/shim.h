// Not public API: the one header through which TensorCore/MatMul.swift reaches OpenBLAS.
#include <cblas.h>
// OpenBLAS extras (declared in openblas_config / cblas.h on Debian): thread control.
