// HDF5Shim: small prefixed C functions over libhdf5 for the HDF5Store Swift module.
// NOT public API (see ../README.md). Only HDF5Store imports this module.
//
// The libhdf5 macros (H5T_NATIVE_FLOAT, H5P_DEFAULT, H5F_ACC_TRUNC, H5S_ALL, H5E_DEFAULT, ...)
// expand to function calls or globals that Swift cannot import, so every call that needs one
// lives here. This header deliberately does not include <hdf5.h>: identifiers are plain int64_t
// (hid_t is int64_t since HDF5 1.10) and statuses are int (negative = failure; the message is
// then available from cps_h5_error_message on the same thread).
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Element types as the shim sees them. Values >= CPS_H5_OTHER_BASE only come back from
/// cps_h5_info (types found in a file that HDF5Store does not write).
enum {
    CPS_H5_F32 = 0,
    CPS_H5_I32 = 1,
    CPS_H5_I64 = 2,
    CPS_H5_U8 = 3,
    CPS_H5_STR = 4,   // variable-length UTF-8 string (char * in memory)
    CPS_H5_F64 = 5,   // attributes only (AttributeValue.double)
    CPS_H5_OTHER_BASE = 16,
    CPS_H5_I8 = 16, CPS_H5_I16 = 17, CPS_H5_U16 = 18, CPS_H5_U32 = 19, CPS_H5_U64 = 20,
    CPS_H5_F16 = 21,
    CPS_H5_FIXSTR = 22,  // fixed-length string (read via cps_h5_read_strings)
    CPS_H5_UNSUPPORTED = 31
};

/// Object kinds returned by cps_h5_kind.
enum { CPS_H5_NONE = 0, CPS_H5_GROUP = 1, CPS_H5_DATASET = 2, CPS_H5_OTHER = 3 };

/// Maximum rank handled by the shim.
enum { CPS_H5_MAX_RANK = 32 };

// MARK: errors

/// Writes "outermost: innermost" descriptions of the first HDF5 failure during the calling
/// thread's last shim call into `buf` (NUL-terminated, truncated to `cap`). Returns the number of
/// bytes written (0: HDF5 reported nothing, e.g. the shim rejected an argument itself).
size_t cps_h5_error_message(char *buf, size_t cap);

// MARK: files

/// 1 = HDF5 file, 0 = not HDF5, negative = cannot tell (e.g. unreadable).
int cps_h5_is_hdf5(const char *path);

/// Creates a file. `truncate` 0 = fail if it exists (H5F_ACC_EXCL), 1 = truncate (H5F_ACC_TRUNC).
/// File locking off, format bounds v1.8, link and attribute creation order tracked (h5py and
/// xarray list them in the order written), metadata-cache evictions off
/// (dirty metadata reaches the disk only at cps_h5_file_flush / close). Returns the file id.
int64_t cps_h5_file_create(const char *path, int truncate);

/// Opens a file read-only (`writable` 0) or read-write. File locking off. Returns the file id.
int64_t cps_h5_file_open(const char *path, int writable);

/// H5Fflush(file, H5F_SCOPE_GLOBAL).
int cps_h5_file_flush(int64_t file);

/// fsync()s the file's descriptor (sec2 driver), so flushed data also survives an OS crash or
/// power loss. Returns 0, or -errno on failure (EINVAL / EROFS, "cannot sync this file", count as
/// success), or -1000 when the descriptor cannot be obtained.
int cps_h5_file_sync(int64_t file);

/// Closes a file (close degree "strong": any object ids still open are closed too).
int cps_h5_file_close(int64_t file);

/// Gives up on a file after a failed write, writing nothing more: its descriptor (sec2 driver) is
/// replaced by a read-only /dev/null before H5Fclose, so the close cannot flush metadata that points
/// at data that never reached the disk. The file stays as it was at its last successful flush, as if
/// the process had been killed there. Returns 0, or -1 when the descriptor could not be replaced
/// (the file id is then left open, still unflushed).
int cps_h5_file_abandon(int64_t file);

// MARK: objects

/// CPS_H5_NONE / GROUP / DATASET / OTHER for `path` relative to `loc`, every intermediate link
/// checked; negative on error.
int cps_h5_kind(int64_t loc, const char *path);

/// Creates one group (the parent must exist), link and attribute creation order tracked.
/// Returns 0 / negative.
int cps_h5_group_create(int64_t loc, const char *path);

/// Number of links in group `path` (relative to `loc`); negative on error.
int64_t cps_h5_group_count(int64_t loc, const char *path);

/// Name of link `index` (name order) in group `path` into `buf` (NUL-terminated); returns the
/// full name length (may exceed cap-1: then the name was truncated), negative on error.
int64_t cps_h5_group_name(int64_t loc, const char *path, int64_t index, char *buf, size_t cap);

/// Number of attributes of object `objpath`; negative on error.
int64_t cps_h5_attr_count(int64_t loc, const char *objpath);

/// Name of attribute `index` (name order) of object `objpath` into `buf`, as cps_h5_group_name.
int64_t cps_h5_attr_name(int64_t loc, const char *objpath, int64_t index, char *buf, size_t cap);

/// Opens a dataset. Returns the dataset id.
int64_t cps_h5_dataset_open(int64_t loc, const char *path);

/// Opens attribute `name` of object `objpath` (relative to `loc`). Returns the attribute id.
int64_t cps_h5_attr_open(int64_t loc, const char *objpath, const char *name);

/// 1 if object `objpath` has attribute `name`, 0 if not, negative on error.
int cps_h5_attr_exists(int64_t loc, const char *objpath, const char *name);

/// Closes a dataset / attribute / group / datatype id.
int cps_h5_close(int64_t id);

// MARK: datasets

/// Creates a dataset of element `type` (CPS_H5_F32 / I32 / I64 / U8 / STR) and shape
/// `dims[rank]`. `chunk` NULL = contiguous, otherwise chunked (then `deflate` 0..9 enables
/// shuffle + deflate; negative = no filter). `fill` NULL = library default, otherwise points
/// at one element of `type` (for STR: a `const char *`). Returns the dataset id.
int64_t cps_h5_dataset_create(int64_t loc, const char *path, int type, int rank, const int64_t *dims,
                              const int64_t *chunk, int deflate, const void *fill);

/// Element type (CPS_H5_*), rank and dims (up to `maxrank`) of a dataset or attribute id.
/// A scalar dataspace has rank 0; a null dataspace reports rank 1, dims[0] = 0.
int cps_h5_info(int64_t id, int *type, int *rank, int64_t *dims, int maxrank);

/// Writes the whole dataset from `buf` (element `type`; STR: `const char *const *`).
int cps_h5_dataset_write(int64_t dset, int type, const void *buf);

/// Writes the hyperslab [index, all trailing dims] (the first axis fixed at `index`).
int cps_h5_dataset_write_slab(int64_t dset, int type, int64_t index, const void *buf);

/// Reads a whole dataset or attribute as `type` (numeric types only; the caller sized `buf`).
int cps_h5_read(int64_t id, int type, void *buf);

/// Reads the hyperslab [index, all trailing dims] of a dataset as numeric `type`.
int cps_h5_dataset_read_slab(int64_t dset, int type, int64_t index, void *buf);

/// Reads `count` strings (variable- or fixed-length) of a dataset or attribute into `out`:
/// each a malloc'd NUL-terminated copy (never NULL on success) that the caller releases with
/// cps_h5_free_strings. `count` must equal the element count.
int cps_h5_read_strings(int64_t id, char **out, int64_t count);

/// free()s `count` strings returned by cps_h5_read_strings (NULL entries allowed).
void cps_h5_free_strings(char **strings, int64_t count);

/// Bytes stored for the chunk containing the element at `offset[rank]` (0 = not allocated, i.e.
/// never written). Negative on error (e.g. not chunked). Needs HDF5 >= 1.10.5.
int64_t cps_h5_chunk_bytes(int64_t dset, const int64_t *offset, int rank);

// MARK: dimension scales (hdf5_hl H5DS)

/// Makes `dset` a dimension scale named `dimname` (CLASS="DIMENSION_SCALE", NAME=dimname).
int cps_h5_set_scale(int64_t dset, const char *dimname);

/// Attaches dimension scale `scale` to axis `axis` of `dset` (writes DIMENSION_LIST on the
/// dataset and REFERENCE_LIST on the scale).
int cps_h5_attach_scale(int64_t dset, int64_t scale, unsigned axis);

/// 1 if the dataset is a dimension scale, 0 if not, negative on error.
int cps_h5_is_scale(int64_t dset);

/// 1 if `scale` is attached to axis `axis` of `dset`, 0 if not, negative on error.
int cps_h5_is_attached(int64_t dset, int64_t scale, unsigned axis);

// MARK: attributes

/// Writes attribute `name` on object `objpath`, replacing any existing one. `type`:
/// CPS_H5_F64 / I64 / I32 / STR. `rank` 0 = scalar (count must be 1), 1 = 1-D of `count`
/// elements (count may be 0). STR buffers are `const char *const *` (UTF-8).
int cps_h5_attr_write(int64_t loc, const char *objpath, const char *name, int type, int rank, int64_t count,
                      const void *buf);

#ifdef __cplusplus
}
#endif
