// Not public API: the one header through which TensorCore/BF16MatMul.swift reaches oneDNN (Debian
// libdnnl-dev 2.6, C API, OpenMP runtime). Debian ships no pkg-config file for it, so the module map
// links dnnl (and libgomp, its threading runtime) directly.
#include <oneapi/dnnl/dnnl.h>
#include <stdint.h>

// oneDNN reads its thread count from OpenMP's per-thread setting. cpiscope splits each product over
// its own threads and asks oneDNN for one thread inside each (omp.h is not on Swift's include path).
void omp_set_num_threads(int);

// Argument indices (macro aliases, which Swift does not import).
static const int cpiscope_dnnl_arg_src = DNNL_ARG_SRC;
static const int cpiscope_dnnl_arg_weights = DNNL_ARG_WEIGHTS;
static const int cpiscope_dnnl_arg_dst = DNNL_ARG_DST;
static const int cpiscope_dnnl_arg_scratchpad = DNNL_ARG_SCRATCHPAD;

// A 2-D memory descriptor [rows, cols] with explicit strides (dnnl_dims_t is a C array).
static inline dnnl_status_t cpiscope_dnnl_md_2d(dnnl_memory_desc_t *md, int64_t rows, int64_t cols,
                                                int64_t row_stride, int64_t col_stride, dnnl_data_type_t type) {
    dnnl_dims_t dims = {rows, cols};
    dnnl_dims_t strides = {row_stride, col_stride};
    return dnnl_memory_desc_init_by_strides(md, 2, dims, type, strides);
}
