// HDF5Shim: placeholder translation unit.
