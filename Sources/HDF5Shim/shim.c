// HDF5Shim: small prefixed C functions over libhdf5 (see include/hdf5shim.h and README.md).
// NOT public API. Every function replaces HDF5's automatic error printing (to stderr) with a
// handler that records the first failure's message on entry, so after a failed call
// cps_h5_error_message describes exactly that failure.
#include "hdf5shim.h"

#include <hdf5.h>
#include <hdf5_hl.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// MARK: helpers

// The first failure's message on this thread since the last shim entry. libhdf5 clears its
// error stack at the start of every API call, so cleanup calls after a failure would wipe it;
// instead an automatic error handler (called by the library when an API call fails, before it
// returns) records the message at once.
static _Thread_local char saved_error[2048];
static _Thread_local int saved_error_set;

typedef struct {
    char first[512];
    char last[1024];
    int count;
} walk_ctx;

static herr_t walk_cb(unsigned n, const H5E_error2_t *err, void *data) {
    (void)n;
    walk_ctx *ctx = (walk_ctx *)data;
    const char *desc = (err->desc && err->desc[0]) ? err->desc : (err->func_name ? err->func_name : "");
    if (ctx->count == 0) snprintf(ctx->first, sizeof ctx->first, "%s", desc);
    snprintf(ctx->last, sizeof ctx->last, "%s", desc);
    ctx->count++;
    return 0;
}

/// Automatic error handler: keeps "outermost: innermost" of the first failure.
static herr_t save_error(hid_t estack, void *unused) {
    (void)unused;
    if (saved_error_set) return 0;
    walk_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    if (H5Ewalk2(estack, H5E_WALK_DOWNWARD, walk_cb, &ctx) < 0 || ctx.count == 0) return 0;
    if (ctx.count == 1 || strcmp(ctx.first, ctx.last) == 0)
        snprintf(saved_error, sizeof saved_error, "%s", ctx.first);
    else
        snprintf(saved_error, sizeof saved_error, "%s: %s", ctx.first, ctx.last);
    saved_error_set = 1;
    return 0;
}

static void quiet(void) {
    // No atexit() cleanup: when a file could not be created or closed (a full disk, /dev/full),
    // libhdf5's exit-time H5close retries the failing flush forever and then prints
    // "HDF5: infinite loop closing library" plus a line of codes under the CLI's one-line error.
    // Files are closed explicitly (HDF5File.close, RunWriter) and flushed after every checkpoint,
    // so nothing relies on the exit-time close. Must precede every other HDF5 call (H5public.h).
    static int atexit_disabled;
    if (!atexit_disabled) { atexit_disabled = 1; H5dont_atexit(); }
    // Per thread in thread-safe builds, so installed on every entry (cheap). Replaces the
    // default handler, which prints the stack to stderr.
    H5Eset_auto2(H5E_DEFAULT, save_error, NULL);
    saved_error[0] = 0;
    saved_error_set = 0;
}

/// A variable-length string type with the given character set (caller closes it).
static hid_t vlen_string_type(H5T_cset_t cset) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return -1;
    if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, cset) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

/// Memory type for a CPS_H5_* code; *owned = 1 when the caller must H5Tclose it.
static hid_t mem_type(int type, int *owned) {
    *owned = 0;
    switch (type) {
    case CPS_H5_F32: return H5T_NATIVE_FLOAT;
    case CPS_H5_F64: return H5T_NATIVE_DOUBLE;
    case CPS_H5_I32: return H5T_NATIVE_INT32;
    case CPS_H5_I64: return H5T_NATIVE_INT64;
    case CPS_H5_U8: return H5T_NATIVE_UINT8;
    case CPS_H5_STR: *owned = 1; return vlen_string_type(H5T_CSET_UTF8);
    default: return -1;
    }
}

/// File (on-disk) type for a CPS_H5_* code: little-endian standard types, UTF-8 vlen strings.
static hid_t file_type(int type, int *owned) {
    *owned = 0;
    switch (type) {
    case CPS_H5_F32: return H5T_IEEE_F32LE;
    case CPS_H5_F64: return H5T_IEEE_F64LE;
    case CPS_H5_I32: return H5T_STD_I32LE;
    case CPS_H5_I64: return H5T_STD_I64LE;
    case CPS_H5_U8: return H5T_STD_U8LE;
    case CPS_H5_STR: *owned = 1; return vlen_string_type(H5T_CSET_UTF8);
    default: return -1;
    }
}

/// Classifies a stored datatype as a CPS_H5_* code.
static int classify(hid_t dtype) {
    size_t size = H5Tget_size(dtype);
    switch (H5Tget_class(dtype)) {
    case H5T_FLOAT:
        if (size == 4) return CPS_H5_F32;
        if (size == 8) return CPS_H5_F64;
        if (size == 2) return CPS_H5_F16;
        return CPS_H5_UNSUPPORTED;
    case H5T_INTEGER: {
        int is_signed = H5Tget_sign(dtype) == H5T_SGN_2;
        switch (size) {
        case 1: return is_signed ? CPS_H5_I8 : CPS_H5_U8;
        case 2: return is_signed ? CPS_H5_I16 : CPS_H5_U16;
        case 4: return is_signed ? CPS_H5_I32 : CPS_H5_U32;
        case 8: return is_signed ? CPS_H5_I64 : CPS_H5_U64;
        default: return CPS_H5_UNSUPPORTED;
        }
    }
    case H5T_STRING: {
        htri_t v = H5Tis_variable_str(dtype);
        if (v < 0) return CPS_H5_UNSUPPORTED;
        return v > 0 ? CPS_H5_STR : CPS_H5_FIXSTR;
    }
    default: return CPS_H5_UNSUPPORTED;
    }
}

static int to_hsize(int rank, const int64_t *in, hsize_t *out) {
    for (int i = 0; i < rank; i++) {
        if (in[i] < 0) return -1;
        out[i] = (hsize_t)in[i];
    }
    return 0;
}

static hid_t get_type(hid_t id) {
    H5I_type_t kind = H5Iget_type(id);
    if (kind == H5I_DATASET) return H5Dget_type(id);
    if (kind == H5I_ATTR) return H5Aget_type(id);
    return -1;
}

static hid_t get_space(hid_t id) {
    H5I_type_t kind = H5Iget_type(id);
    if (kind == H5I_DATASET) return H5Dget_space(id);
    if (kind == H5I_ATTR) return H5Aget_space(id);
    return -1;
}

/// Access properties shared by create and open: strong close, file locking off (so readers,
/// e.g. notebooks, can open a file while a run writes it), and for writers format bounds v1.8 and
/// metadata-cache evictions disabled (metadata is written only at flush/close).
static hid_t file_access(int writer) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return -1;
    if (H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) goto fail;
#if H5_VERSION_GE(1, 10, 7)
    if (H5Pset_file_locking(fapl, 0, 1) < 0) goto fail;
#endif
    if (writer) {
        if (H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18) < 0) goto fail;
        H5AC_cache_config_t cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.version = H5AC__CURR_CACHE_CONFIG_VERSION;
        if (H5Pget_mdc_config(fapl, &cfg) < 0) goto fail;
        // Evictions can only be disabled with automatic resizing off (H5ACpublic.h).
        cfg.incr_mode = H5C_incr__off;
        cfg.flash_incr_mode = H5C_flash_incr__off;
        cfg.decr_mode = H5C_decr__off;
        cfg.evictions_enabled = 0;
        if (H5Pset_mdc_config(fapl, &cfg) < 0) goto fail;
    }
    return fapl;
fail:
    H5Pclose(fapl);
    return -1;
}

// MARK: errors

size_t cps_h5_error_message(char *buf, size_t cap) {
    if (!buf || cap == 0) return 0;
    int n = snprintf(buf, cap, "%s", saved_error_set ? saved_error : "");
    if (n < 0) return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

// MARK: files

int cps_h5_is_hdf5(const char *path) {
    quiet();
#if H5_VERSION_GE(1, 12, 0)
    htri_t r = H5Fis_accessible(path, H5P_DEFAULT);
#else
    htri_t r = H5Fis_hdf5(path);
#endif
    return r < 0 ? -1 : (int)r;
}

int64_t cps_h5_file_create(const char *path, int truncate) {
    quiet();
    hid_t fapl = file_access(1);
    if (fapl < 0) return -1;
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    if (fcpl < 0) { H5Pclose(fapl); return -1; }
    hid_t file = -1;
    // Root group links listed in creation order (h5py / xarray then show variables in that order).
    if (H5Pset_link_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) >= 0 &&
        H5Pset_attr_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) >= 0)
        file = H5Fcreate(path, truncate ? H5F_ACC_TRUNC : H5F_ACC_EXCL, fcpl, fapl);
    H5Pclose(fcpl);
    H5Pclose(fapl);
    return file;
}

int64_t cps_h5_file_open(const char *path, int writable) {
    quiet();
    hid_t fapl = file_access(writable);
    if (fapl < 0) return -1;
    hid_t file = H5Fopen(path, writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    return file;
}

int cps_h5_file_flush(int64_t file) {
    quiet();
    return H5Fflush(file, H5F_SCOPE_GLOBAL) < 0 ? -1 : 0;
}

int cps_h5_file_sync(int64_t file) {
    quiet();
    void *handle = NULL;
    hid_t fapl = H5Fget_access_plist(file);
    if (fapl < 0) return -1000;
    hid_t driver = H5Pget_driver(fapl);
    H5Pclose(fapl);
    if (driver != H5FD_SEC2) return 0;  // other drivers: nothing we can fsync
    if (H5Fget_vfd_handle(file, H5P_DEFAULT, &handle) < 0 || !handle) return -1000;
    int fd = *(int *)handle;
    if (fsync(fd) == 0) return 0;
    int e = errno;
    return (e == EINVAL || e == EROFS) ? 0 : -e;
}

int cps_h5_file_close(int64_t file) {
    quiet();
    return H5Fclose(file) < 0 ? -1 : 0;
}

int cps_h5_file_abandon(int64_t file) {
    quiet();
    hid_t fapl = H5Fget_access_plist(file);
    hid_t driver = fapl < 0 ? -1 : H5Pget_driver(fapl);
    if (fapl >= 0) H5Pclose(fapl);
    void *handle = NULL;
    int result = -1;
    if (driver == H5FD_SEC2 && H5Fget_vfd_handle(file, H5P_DEFAULT, &handle) >= 0 && handle) {
        // The descriptor now reads /dev/null and refuses writes and ftruncate: the close below can
        // neither write metadata nor resize the file.
        int fd = *(int *)handle;
        int blocked = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (blocked >= 0) {
            if (dup2(blocked, fd) >= 0) result = 0;
            close(blocked);
        }
    }
    if (result == 0) H5Fclose(file);  // fails (nothing can be written); frees what it can
    return result;
}

// MARK: objects

/// Kind of the object at `path` (assumed to exist).
static int object_kind(hid_t loc, const char *path) {
    hid_t obj = H5Oopen(loc, path, H5P_DEFAULT);
    if (obj < 0) return CPS_H5_NONE;  // e.g. a dangling soft link
    H5I_type_t kind = H5Iget_type(obj);
    H5Oclose(obj);
    if (kind == H5I_GROUP) return CPS_H5_GROUP;
    if (kind == H5I_DATASET) return CPS_H5_DATASET;
    return CPS_H5_OTHER;
}

int cps_h5_kind(int64_t loc, const char *path) {
    quiet();
    if (!path) return -1;
    if (strcmp(path, "/") == 0 || strcmp(path, ".") == 0) return CPS_H5_GROUP;
    // Walk the prefixes: H5Lexists fails (rather than returning 0) when an intermediate
    // component is missing or is not a group, so each prefix must be an existing group first.
    size_t len = strlen(path);
    char *buf = malloc(len + 1);
    if (!buf) return -1;
    memcpy(buf, path, len + 1);
    int result = CPS_H5_NONE;
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char saved = buf[i];
        buf[i] = 0;
        htri_t e = H5Lexists(loc, buf, H5P_DEFAULT);
        if (e <= 0) {
            result = e < 0 ? -1 : CPS_H5_NONE;
            break;
        }
        result = object_kind(loc, buf);
        buf[i] = saved;
        if (saved == '/' && result != CPS_H5_GROUP) {
            result = CPS_H5_NONE;  // "dataset/child" does not exist
            break;
        }
    }
    free(buf);
    return result;
}

int cps_h5_group_create(int64_t loc, const char *path) {
    quiet();
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    if (gcpl < 0) return -1;
    hid_t g = -1;
    if (H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) >= 0 &&
        H5Pset_attr_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) >= 0)
        g = H5Gcreate2(loc, path, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    H5Pclose(gcpl);
    if (g < 0) return -1;
    return H5Gclose(g) < 0 ? -1 : 0;
}

int64_t cps_h5_group_count(int64_t loc, const char *path) {
    quiet();
    H5G_info_t info;
    if (H5Gget_info_by_name(loc, path, &info, H5P_DEFAULT) < 0) return -1;
    return (int64_t)info.nlinks;
}

int64_t cps_h5_group_name(int64_t loc, const char *path, int64_t index, char *buf, size_t cap) {
    quiet();
    if (index < 0) return -1;
    ssize_t n = H5Lget_name_by_idx(loc, path, H5_INDEX_NAME, H5_ITER_INC, (hsize_t)index, buf, cap, H5P_DEFAULT);
    return n < 0 ? -1 : (int64_t)n;
}

int64_t cps_h5_attr_count(int64_t loc, const char *objpath) {
    quiet();
    H5O_info_t info;  // HDF5 1.10 (Debian 12); 1.12 renames it H5O_info1_t and adds _by_name3
    if (H5Oget_info_by_name2(loc, objpath, &info, H5O_INFO_NUM_ATTRS, H5P_DEFAULT) < 0) return -1;
    return (int64_t)info.num_attrs;
}

int64_t cps_h5_attr_name(int64_t loc, const char *objpath, int64_t index, char *buf, size_t cap) {
    quiet();
    if (index < 0) return -1;
    ssize_t n = H5Aget_name_by_idx(loc, objpath, H5_INDEX_NAME, H5_ITER_INC, (hsize_t)index, buf, cap, H5P_DEFAULT);
    return n < 0 ? -1 : (int64_t)n;
}

int64_t cps_h5_dataset_open(int64_t loc, const char *path) {
    quiet();
    return H5Dopen2(loc, path, H5P_DEFAULT);
}

int64_t cps_h5_attr_open(int64_t loc, const char *objpath, const char *name) {
    quiet();
    return H5Aopen_by_name(loc, objpath, name, H5P_DEFAULT, H5P_DEFAULT);
}

int cps_h5_attr_exists(int64_t loc, const char *objpath, const char *name) {
    quiet();
    htri_t e = H5Aexists_by_name(loc, objpath, name, H5P_DEFAULT);
    return e < 0 ? -1 : (int)e;
}

int cps_h5_close(int64_t id) {
    quiet();
    herr_t r;
    switch (H5Iget_type(id)) {
    case H5I_FILE: r = H5Fclose(id); break;
    case H5I_GROUP: r = H5Gclose(id); break;
    case H5I_DATASET: r = H5Dclose(id); break;
    case H5I_ATTR: r = H5Aclose(id); break;
    case H5I_DATATYPE: r = H5Tclose(id); break;
    case H5I_DATASPACE: r = H5Sclose(id); break;
    default: r = -1; break;
    }
    return r < 0 ? -1 : 0;
}

// MARK: datasets

int64_t cps_h5_dataset_create(int64_t loc, const char *path, int type, int rank, const int64_t *dims,
                              const int64_t *chunk, int deflate, const void *fill) {
    quiet();
    if (rank < 0 || rank > CPS_H5_MAX_RANK) return -1;
    hsize_t hdims[CPS_H5_MAX_RANK], hchunk[CPS_H5_MAX_RANK];
    if (to_hsize(rank, dims, hdims) < 0) return -1;
    if (chunk && to_hsize(rank, chunk, hchunk) < 0) return -1;

    int ftype_owned = 0, mtype_owned = 0;
    hid_t ftype = file_type(type, &ftype_owned);
    hid_t mtype = mem_type(type, &mtype_owned);
    hid_t space = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, hdims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t dset = -1;
    if (ftype < 0 || mtype < 0 || space < 0 || dcpl < 0) goto done;
    // No modification times: identical content gives identical files.
    if (H5Pset_obj_track_times(dcpl, 0) < 0) goto done;
    if (H5Pset_attr_creation_order(dcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) < 0) goto done;
    if (chunk) {
        if (H5Pset_chunk(dcpl, rank, hchunk) < 0) goto done;
        if (deflate >= 0) {
            if (H5Pset_shuffle(dcpl) < 0) goto done;
            if (H5Pset_deflate(dcpl, (unsigned)(deflate > 9 ? 9 : deflate)) < 0) goto done;
        }
    }
    if (fill && H5Pset_fill_value(dcpl, mtype, fill) < 0) goto done;
    dset = H5Dcreate2(loc, path, ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
done:
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
    if (ftype_owned && ftype >= 0) H5Tclose(ftype);
    if (mtype_owned && mtype >= 0) H5Tclose(mtype);
    return dset;
}

int cps_h5_info(int64_t id, int *type, int *rank, int64_t *dims, int maxrank) {
    quiet();
    hid_t dtype = get_type(id);
    if (dtype < 0) return -1;
    *type = classify(dtype);
    H5Tclose(dtype);
    hid_t space = get_space(id);
    if (space < 0) return -1;
    int result = 0;
    switch (H5Sget_simple_extent_type(space)) {
    case H5S_NULL:
        *rank = 1;
        if (maxrank >= 1) dims[0] = 0; else result = -1;
        break;
    case H5S_SCALAR:
        *rank = 0;
        break;
    case H5S_SIMPLE: {
        int n = H5Sget_simple_extent_ndims(space);
        hsize_t hd[CPS_H5_MAX_RANK];
        if (n < 0 || n > maxrank || n > CPS_H5_MAX_RANK || H5Sget_simple_extent_dims(space, hd, NULL) < 0) {
            result = -1;
            break;
        }
        *rank = n;
        for (int i = 0; i < n; i++) {
            if (hd[i] > (hsize_t)INT64_MAX) { result = -1; break; }
            dims[i] = (int64_t)hd[i];
        }
        break;
    }
    default:
        result = -1;
    }
    H5Sclose(space);
    return result;
}

int cps_h5_dataset_write(int64_t dset, int type, const void *buf) {
    quiet();
    int owned = 0;
    hid_t mtype = mem_type(type, &owned);
    if (mtype < 0) return -1;
    herr_t r = H5Dwrite(dset, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    if (owned) H5Tclose(mtype);
    return r < 0 ? -1 : 0;
}

/// Selects [index, all trailing] in a fresh copy of the dataset's space; returns the file space
/// and sets *mspace to a matching memory space.
static hid_t select_slab(hid_t dset, int64_t index, hid_t *mspace) {
    *mspace = -1;
    hid_t fspace = H5Dget_space(dset);
    if (fspace < 0) return -1;
    int rank = H5Sget_simple_extent_ndims(fspace);
    hsize_t dims[CPS_H5_MAX_RANK], start[CPS_H5_MAX_RANK], count[CPS_H5_MAX_RANK];
    if (rank < 1 || rank > CPS_H5_MAX_RANK || H5Sget_simple_extent_dims(fspace, dims, NULL) < 0 || index < 0 ||
        (hsize_t)index >= dims[0]) {
        H5Sclose(fspace);
        return -1;
    }
    start[0] = (hsize_t)index;
    count[0] = 1;
    for (int i = 1; i < rank; i++) {
        start[i] = 0;
        count[i] = dims[i];
    }
    if (H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) < 0) {
        H5Sclose(fspace);
        return -1;
    }
    *mspace = H5Screate_simple(rank, count, NULL);
    if (*mspace < 0) {
        H5Sclose(fspace);
        return -1;
    }
    return fspace;
}

int cps_h5_dataset_write_slab(int64_t dset, int type, int64_t index, const void *buf) {
    quiet();
    int owned = 0;
    hid_t mtype = mem_type(type, &owned);
    if (mtype < 0) return -1;
    hid_t mspace;
    hid_t fspace = select_slab(dset, index, &mspace);
    herr_t r = -1;
    if (fspace >= 0) {
        r = H5Dwrite(dset, mtype, mspace, fspace, H5P_DEFAULT, buf);
        H5Sclose(mspace);
        H5Sclose(fspace);
    }
    if (owned) H5Tclose(mtype);
    return r < 0 ? -1 : 0;
}

int cps_h5_read(int64_t id, int type, void *buf) {
    quiet();
    if (type == CPS_H5_STR) return -1;  // strings go through cps_h5_read_strings
    int owned = 0;
    hid_t mtype = mem_type(type, &owned);
    if (mtype < 0) return -1;
    herr_t r;
    H5I_type_t kind = H5Iget_type(id);
    if (kind == H5I_DATASET)
        r = H5Dread(id, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    else if (kind == H5I_ATTR)
        r = H5Aread(id, mtype, buf);
    else
        r = -1;
    return r < 0 ? -1 : 0;
}

int cps_h5_dataset_read_slab(int64_t dset, int type, int64_t index, void *buf) {
    quiet();
    if (type == CPS_H5_STR) return -1;
    int owned = 0;
    hid_t mtype = mem_type(type, &owned);
    if (mtype < 0) return -1;
    hid_t mspace;
    hid_t fspace = select_slab(dset, index, &mspace);
    if (fspace < 0) return -1;
    herr_t r = H5Dread(dset, mtype, mspace, fspace, H5P_DEFAULT, buf);
    H5Sclose(mspace);
    H5Sclose(fspace);
    return r < 0 ? -1 : 0;
}

static char *copy_string(const char *s, size_t len) {
    char *out = malloc(len + 1);
    if (!out) return NULL;
    if (len) memcpy(out, s, len);
    out[len] = 0;
    return out;
}

int cps_h5_read_strings(int64_t id, char **out, int64_t count) {
    quiet();
    if (count < 0 || (uint64_t)count > SIZE_MAX / sizeof(char *)) return -1;
    for (int64_t i = 0; i < count; i++) out[i] = NULL;
    H5I_type_t kind = H5Iget_type(id);
    if (kind != H5I_DATASET && kind != H5I_ATTR) return -1;
    hid_t dtype = get_type(id);
    if (dtype < 0) return -1;
    hid_t space = get_space(id);
    int result = -1;
    hid_t mtype = -1;
    if (space < 0 || H5Tget_class(dtype) != H5T_STRING) goto done;
    hssize_t npoints = H5Sget_simple_extent_type(space) == H5S_NULL ? 0 : H5Sget_simple_extent_npoints(space);
    if (npoints < 0 || (int64_t)npoints != count) goto done;
    if (count == 0) { result = 0; goto done; }
    H5T_cset_t cset = H5Tget_cset(dtype);
    htri_t is_vlen = H5Tis_variable_str(dtype);
    if (cset < 0 || is_vlen < 0) goto done;
    if (is_vlen) {
        mtype = vlen_string_type(cset);
        char **tmp = calloc((size_t)count, sizeof(char *));
        if (mtype < 0 || !tmp) { free(tmp); goto done; }
        herr_t r = kind == H5I_DATASET ? H5Dread(id, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, tmp)
                                       : H5Aread(id, mtype, tmp);
        if (r >= 0) {
            result = 0;
            for (int64_t i = 0; i < count; i++) {
                const char *s = tmp[i] ? tmp[i] : "";
                out[i] = copy_string(s, strlen(s));
                if (!out[i]) result = -1;
            }
#if H5_VERSION_GE(1, 12, 0)  // H5Treclaim is declared in 1.10.8 headers but not exported
            H5Treclaim(mtype, space, H5P_DEFAULT, tmp);
#else
            H5Dvlen_reclaim(mtype, space, H5P_DEFAULT, tmp);
#endif
        }
        free(tmp);
    } else {
        size_t size = H5Tget_size(dtype);
        H5T_str_t pad = H5Tget_strpad(dtype);
        if (size == 0 || pad < 0 || (uint64_t)count > SIZE_MAX / size) goto done;
        mtype = H5Tcopy(H5T_C_S1);
        char *raw = malloc((size_t)count * size);
        if (mtype < 0 || !raw || H5Tset_size(mtype, size) < 0 || H5Tset_cset(mtype, cset) < 0 ||
            H5Tset_strpad(mtype, pad) < 0) {
            free(raw);
            goto done;
        }
        herr_t r = kind == H5I_DATASET ? H5Dread(id, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw)
                                       : H5Aread(id, mtype, raw);
        if (r >= 0) {
            result = 0;
            for (int64_t i = 0; i < count; i++) {
                const char *s = raw + (size_t)i * size;
                size_t len = 0;  // strnlen is POSIX, not C11
                while (len < size && s[len]) len++;
                if (pad == H5T_STR_SPACEPAD)
                    while (len > 0 && s[len - 1] == ' ') len--;
                out[i] = copy_string(s, len);
                if (!out[i]) result = -1;
            }
        }
        free(raw);
    }
done:
    if (mtype >= 0) H5Tclose(mtype);
    if (space >= 0) H5Sclose(space);
    H5Tclose(dtype);
    if (result < 0) cps_h5_free_strings(out, count);
    return result;
}

void cps_h5_free_strings(char **strings, int64_t count) {
    if (!strings) return;
    for (int64_t i = 0; i < count; i++) {
        free(strings[i]);
        strings[i] = NULL;
    }
}

int64_t cps_h5_chunk_bytes(int64_t dset, const int64_t *offset, int rank) {
    quiet();
    if (rank < 1 || rank > CPS_H5_MAX_RANK) return -1;
    hsize_t hoff[CPS_H5_MAX_RANK];
    if (to_hsize(rank, offset, hoff) < 0) return -1;
    // An unallocated chunk: size 0, addr HADDR_UNDEF (H5Dpublic.h, since 1.10.5).
    unsigned filter_mask = 0;
    haddr_t addr = HADDR_UNDEF;
    hsize_t nbytes = 0;
    if (H5Dget_chunk_info_by_coord(dset, hoff, &filter_mask, &addr, &nbytes) < 0) return -1;
    if (addr == HADDR_UNDEF) return 0;
    return nbytes > (hsize_t)INT64_MAX ? -1 : (int64_t)nbytes;
}

// MARK: dimension scales

int cps_h5_set_scale(int64_t dset, const char *dimname) {
    quiet();
    return H5DSset_scale(dset, dimname) < 0 ? -1 : 0;
}

int cps_h5_attach_scale(int64_t dset, int64_t scale, unsigned axis) {
    quiet();
    return H5DSattach_scale(dset, scale, axis) < 0 ? -1 : 0;
}

int cps_h5_is_scale(int64_t dset) {
    quiet();
    htri_t r = H5DSis_scale(dset);
    return r < 0 ? -1 : (int)r;
}

int cps_h5_is_attached(int64_t dset, int64_t scale, unsigned axis) {
    quiet();
    htri_t r = H5DSis_attached(dset, scale, axis);
    return r < 0 ? -1 : (int)r;
}

// MARK: attributes

int cps_h5_attr_write(int64_t loc, const char *objpath, const char *name, int type, int rank, int64_t count,
                      const void *buf) {
    quiet();
    if (rank != 0 && rank != 1) return -1;
    if (rank == 0 && count != 1) return -1;
    if (count < 0) return -1;
    if (type == CPS_H5_U8 || type == CPS_H5_F32) return -1;  // attributes: F64 / I64 / I32 / STR

    int ftype_owned = 0, mtype_owned = 0;
    hid_t ftype = file_type(type, &ftype_owned);
    hid_t mtype = mem_type(type, &mtype_owned);
    hsize_t dim = (hsize_t)count;
    hid_t space = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dim, NULL);
    int result = -1;
    hid_t attr = -1;
    if (ftype < 0 || mtype < 0 || space < 0) goto done;
    // Replace: delete an existing attribute of that name only once the new one can be built.
    htri_t exists = H5Aexists_by_name(loc, objpath, name, H5P_DEFAULT);
    if (exists < 0) goto done;
    if (exists > 0 && H5Adelete_by_name(loc, objpath, name, H5P_DEFAULT) < 0) goto done;
    attr = H5Acreate_by_name(loc, objpath, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (attr < 0) goto done;
    if (count > 0 && H5Awrite(attr, mtype, buf) < 0) goto done;
    result = 0;
done:
    if (attr >= 0 && H5Aclose(attr) < 0) result = -1;
    if (space >= 0) H5Sclose(space);
    if (ftype_owned && ftype >= 0) H5Tclose(ftype);
    if (mtype_owned && mtype >= 0) H5Tclose(mtype);
    return result;
}
