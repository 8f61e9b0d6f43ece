// Not public API: libhdf5 headers for the HDF5Shim C target only.
#include <hdf5.h>
#include <hdf5_hl.h>
