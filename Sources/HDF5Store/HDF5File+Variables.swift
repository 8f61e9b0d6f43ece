// Dimensions, coordinates and variables, netCDF-4 style so that
// `xarray.open_dataset(path, engine="h5netcdf")` sees named dimensions with coordinate values:
//
//   dimension      1-D dataset at the root, made an HDF5 dimension scale (H5DSset_scale:
//                  CLASS="DIMENSION_SCALE", NAME=<dim>) holding the coordinate values, plus an
//                  int32 `_Netcdf4Dimid` (netCDF-C's dimension id). h5netcdf treats every
//                  DIMENSION_SCALE dataset as a dimension whose coordinate variable is itself.
//   coordinate     1-D dataset at the root (e.g. `step` along `checkpoint`) with the dimension's
//                  scale attached, listed in the root attribute `coordinates` (space separated),
//                  which xarray's CF decoding turns into a non-dimension coordinate.
//   variable       N-D dataset (possibly in a group) with a scale attached per axis
//                  (H5DSattach_scale writes DIMENSION_LIST here and REFERENCE_LIST on the scale);
//                  h5netcdf names each axis after the attached scale, so no `phony_dim_*`.
import HDF5Shim

extension HDF5File {
    /// Name of the root attribute listing non-dimension coordinates (xarray CF decoding).
    static let coordinatesAttribute = "coordinates"

    // MARK: dimensions and coordinates

    /// Creates dimension `name` (a root-level dimension scale) whose coordinate values are `strings`
    /// (variable-length UTF-8). - Throws: `alreadyExists`, `invalidArgument` (empty, bad name).
    public func createDimension(_ name: String, strings: [String]) throws {
        try createScale(name, type: .string, count: strings.count) { dset in
            try withCStrings(strings, name) { cps_h5_dataset_write(dset, Int32(CPS_H5_STR), $0) }
        }
    }

    /// Creates dimension `name` (a root-level dimension scale) whose coordinate values are `ints`.
    public func createDimension(_ name: String, ints: [Int64]) throws {
        try createScale(name, type: .int64, count: ints.count) { dset in
            ints.withUnsafeBufferPointer { cps_h5_dataset_write(dset, Int32(CPS_H5_I64), $0.baseAddress) }
        }
    }

    /// A non-dimension coordinate along an existing dimension (e.g. `step` on `checkpoint`),
    /// attached to that dim's scale and listed in the root `coordinates` attribute.
    /// - Throws: `missingObject` (no such dimension), `shapeMismatch` (count != dimension size),
    ///   `alreadyExists`.
    public func createCoordinate(_ name: String, along dim: String, ints: [Int64]) throws {
        let norm = try topLevelName(name)
        let dimName = try topLevelName(dim)
        try requireWritable(norm)
        try locked { id in
            try requireAbsent(id, norm)
            let size = try dimensionSize(id, dimName)
            guard ints.count == size else {
                throw HDF5Error.shapeMismatch(file: path, object: norm, expected: [size], found: [ints.count])
            }
            let dset = try createDataset(id, norm, .int64, dims: [size], chunk: nil, fill: nil)
            defer { _ = cps_h5_close(dset) }
            let status = ints.withUnsafeBufferPointer { cps_h5_dataset_write(dset, Int32(CPS_H5_I64), $0.baseAddress) }
            if status < 0 { throw writeError(norm, "write") }
            try attachScales(id, dset, norm, dims: [dimName])
            var names: [String] = []
            if cps_h5_attr_exists(id, ".", Self.coordinatesAttribute) > 0 {
                let attr = cps_h5_attr_open(id, ".", Self.coordinatesAttribute)
                if attr >= 0 {
                    defer { _ = cps_h5_close(attr) }
                    if let (code, shape) = try? info(attr, "/"), shape.isEmpty,
                       code == Int32(CPS_H5_STR) || code == Int32(CPS_H5_FIXSTR),
                       let existing = try? readStringsLocked(attr, count: 1, "/").first {
                        names = existing.split(separator: " ").map(String.init)
                    }
                }
            }
            if !names.contains(norm) { names.append(norm) }
            try writeAttribute(id, "/", Self.coordinatesAttribute, .string(names.joined(separator: " ")))
        }
    }

    /// Names of the root-level dimension scales, in name order.
    public func dimensionNames() throws -> [String] {
        try locked { id in
            try childrenLocked(id, "/").filter { (try? dimensionSize(id, $0)) != nil }
        }
    }

    // MARK: variables

    /// An N-D dataset over named existing dimensions, chunked (1 along the first axis, whole
    /// trailing axes up to `Chunking.byteLimit`), shuffle + deflate level 4, filled with `fill`
    /// (default NaN for float32, -1 for int32/int64, 0 for uint8; give `.double` for float32,
    /// `.int` for integer types; strings always fill with "") and with a dimension scale
    /// attached per axis. `name` may lie in groups ("dumps/attention_pattern"; missing groups are
    /// created); `dims` always name root-level dimensions. `dims: []` makes a scalar variable
    /// (contiguous, no filters).
    /// - Throws: `alreadyExists`, `missingObject` (unknown dimension), `invalidArgument`
    ///   (duplicate dimension, fill of the wrong kind or out of range).
    public func createVariable(_ name: String, type: HDF5ElementType, dims: [String], fill: AttributeValue? = nil) throws {
        let norm = try normalized(name)
        guard norm != "/" else {
            throw HDF5Error.invalidArgument(file: path, object: name, reason: "a variable needs a name")
        }
        try requireWritable(norm)
        let dimNames = try dims.map { try topLevelName($0) }
        guard dimNames.count <= Int(CPS_H5_MAX_RANK) else {
            throw HDF5Error.invalidArgument(file: path, object: norm, reason: "more than \(CPS_H5_MAX_RANK) dimensions")
        }
        if Set(dimNames).count != dimNames.count {
            throw HDF5Error.invalidArgument(file: path, object: norm,
                                            reason: "dimension listed twice in \(dimNames); create a second dimension (e.g. key_pos)")
        }
        let fillValue = try checkedFill(fill ?? type.defaultFill, type: type, norm)
        try locked { id in
            try requireAbsent(id, norm)
            let sizes = try dimNames.map { try dimensionSize(id, $0) }
            for group in ObjectPath.ancestors(norm) {
                let kind = cps_h5_kind(id, group)
                if kind == Int32(CPS_H5_GROUP) { continue }
                if kind != Int32(CPS_H5_NONE) { throw HDF5Error.alreadyExists(file: path, object: group) }
                if cps_h5_group_create(id, group) < 0 { throw writeError(group, "create group") }
            }
            let chunk = sizes.isEmpty ? nil : Chunking.shape(dims: sizes, elementSize: type.storedSize)
            let dset = try createDataset(id, norm, type, dims: sizes, chunk: chunk, fill: fillValue)
            defer { _ = cps_h5_close(dset) }
            try attachScales(id, dset, norm, dims: dimNames)
        }
    }

    /// Shape of a dataset ([] for a scalar).
    public func shape(of name: String) throws -> [Int] {
        let norm = try normalized(name)
        return try withDataset(norm) { _, dset in try info(dset, norm).shape }
    }

    /// Element type of a dataset, nil when it is not one HDF5Store writes (e.g. float64).
    public func elementType(of name: String) throws -> HDF5ElementType? {
        let norm = try normalized(name)
        let code = try withDataset(norm) { _, dset in try info(dset, norm).code }
        return [HDF5ElementType.float32, .int32, .int64, .uint8, .string].first { $0.code == code }
    }

    /// The root dimension attached to each axis of a dataset (nil for an axis without one).
    public func dimensions(of name: String) throws -> [String?] {
        let norm = try normalized(name)
        return try withDataset(norm) { id, dset in
            let rank = try info(dset, norm).shape.count
            var result = [String?](repeating: nil, count: rank)
            for dim in try childrenLocked(id, "/") where (try? dimensionSize(id, dim)) != nil {
                let scale = cps_h5_dataset_open(id, dim)
                guard scale >= 0 else { throw readError(dim) }
                defer { _ = cps_h5_close(scale) }
                for axis in 0..<rank where cps_h5_is_attached(dset, scale, UInt32(axis)) > 0 {
                    result[axis] = dim
                }
            }
            return result
        }
    }

    // MARK: writing

    /// Writes one slab at index `i` along the first dimension (all trailing dims, row-major),
    /// e.g. one checkpoint's results. Call `flush()` once the checkpoint is complete.
    /// - Throws: `typeMismatch` (not float32), `indexOutOfRange`, `shapeMismatch`, `writeFailed`.
    public func writeSlab(_ name: String, index i: Int, floats: [Float]) throws {
        try writeSlab(name, i, .float32, floats.count) { dset in
            floats.withUnsafeBufferPointer { cps_h5_dataset_write_slab(dset, Int32(CPS_H5_F32), Int64(i), $0.baseAddress) }
        }
    }

    /// `writeSlab` for int32 variables.
    public func writeSlab(_ name: String, index i: Int, ints32: [Int32]) throws {
        try writeSlab(name, i, .int32, ints32.count) { dset in
            ints32.withUnsafeBufferPointer { cps_h5_dataset_write_slab(dset, Int32(CPS_H5_I32), Int64(i), $0.baseAddress) }
        }
    }

    /// `writeSlab` for int64 variables.
    public func writeSlab(_ name: String, index i: Int, int64: [Int64]) throws {
        try writeSlab(name, i, .int64, int64.count) { dset in
            int64.withUnsafeBufferPointer { cps_h5_dataset_write_slab(dset, Int32(CPS_H5_I64), Int64(i), $0.baseAddress) }
        }
    }

    /// `writeSlab` for uint8 variables.
    public func writeSlab(_ name: String, index i: Int, uint8: [UInt8]) throws {
        try writeSlab(name, i, .uint8, uint8.count) { dset in
            uint8.withUnsafeBufferPointer { cps_h5_dataset_write_slab(dset, Int32(CPS_H5_U8), Int64(i), $0.baseAddress) }
        }
    }

    /// `writeSlab` for string variables (UTF-8; NUL characters are rejected).
    public func writeSlab(_ name: String, index i: Int, strings: [String]) throws {
        try writeSlab(name, i, .string, strings.count) { dset in
            try withCStrings(strings, name) { cps_h5_dataset_write_slab(dset, Int32(CPS_H5_STR), Int64(i), $0) }
        }
    }

    /// Writes a whole float32 variable (all elements, row-major).
    public func write(_ name: String, floats: [Float]) throws {
        try writeWhole(name, .float32, floats.count) { dset in
            floats.withUnsafeBufferPointer { cps_h5_dataset_write(dset, Int32(CPS_H5_F32), $0.baseAddress) }
        }
    }

    /// Writes a whole int32 variable.
    public func write(_ name: String, ints32: [Int32]) throws {
        try writeWhole(name, .int32, ints32.count) { dset in
            ints32.withUnsafeBufferPointer { cps_h5_dataset_write(dset, Int32(CPS_H5_I32), $0.baseAddress) }
        }
    }

    /// Writes a whole int64 variable.
    public func write(_ name: String, int64: [Int64]) throws {
        try writeWhole(name, .int64, int64.count) { dset in
            int64.withUnsafeBufferPointer { cps_h5_dataset_write(dset, Int32(CPS_H5_I64), $0.baseAddress) }
        }
    }

    /// Writes a whole uint8 variable.
    public func write(_ name: String, uint8: [UInt8]) throws {
        try writeWhole(name, .uint8, uint8.count) { dset in
            uint8.withUnsafeBufferPointer { cps_h5_dataset_write(dset, Int32(CPS_H5_U8), $0.baseAddress) }
        }
    }

    /// Writes a whole string variable.
    public func write(_ name: String, strings: [String]) throws {
        try writeWhole(name, .string, strings.count) { dset in
            try withCStrings(strings, name) { cps_h5_dataset_write(dset, Int32(CPS_H5_STR), $0) }
        }
    }

    // MARK: reading

    /// Reads a whole float32 dataset: its shape and row-major values (unwritten slabs read as the
    /// fill value). - Throws: `missingObject`, `typeMismatch` (not float32), `tooLarge`.
    public func readFloats(_ name: String) throws -> (shape: [Int], values: [Float]) {
        try readAll(name, expected: "float32", accepted: [CPS_H5_F32], memory: CPS_H5_F32)
    }

    /// Reads a whole int32 dataset (int8/int16/uint8/uint16 widen losslessly).
    public func readInts32(_ name: String) throws -> (shape: [Int], values: [Int32]) {
        try readAll(name, expected: "int32", accepted: [CPS_H5_I32, CPS_H5_I16, CPS_H5_I8, CPS_H5_U16, CPS_H5_U8],
                    memory: CPS_H5_I32)
    }

    /// Reads a whole int64 dataset (narrower signed and uint8/16/32 widen losslessly).
    public func readInt64(_ name: String) throws -> (shape: [Int], values: [Int64]) {
        try readAll(name, expected: "int64",
                    accepted: [CPS_H5_I64, CPS_H5_I32, CPS_H5_I16, CPS_H5_I8, CPS_H5_U32, CPS_H5_U16, CPS_H5_U8],
                    memory: CPS_H5_I64)
    }

    /// Reads a whole uint8 dataset.
    public func readUInt8(_ name: String) throws -> (shape: [Int], values: [UInt8]) {
        try readAll(name, expected: "uint8", accepted: [CPS_H5_U8], memory: CPS_H5_U8)
    }

    /// Reads a whole string dataset (variable- or fixed-length; invalid UTF-8 is repaired).
    public func readStrings(_ name: String) throws -> (shape: [Int], values: [String]) {
        let norm = try normalized(name)
        return try withDataset(norm) { _, dset in
            let (code, shape) = try info(dset, norm)
            guard code == Int32(CPS_H5_STR) || code == Int32(CPS_H5_FIXSTR) else {
                throw HDF5Error.typeMismatch(file: path, object: norm, expected: "strings", found: describeStoredType(code))
            }
            let count = try elementCount(shape, norm)
            return (shape, try readStringsLocked(dset, count: count, norm))
        }
    }

    /// Reads the float32 slab at index `index` of the first dimension; `shape` is the trailing dims.
    public func readFloats(_ name: String, slab index: Int) throws -> (shape: [Int], values: [Float]) {
        let norm = try normalized(name)
        return try withDataset(norm) { _, dset in
            let (code, shape) = try info(dset, norm)
            guard code == Int32(CPS_H5_F32) else {
                throw HDF5Error.typeMismatch(file: path, object: norm, expected: "float32", found: describeStoredType(code))
            }
            try checkSlabIndex(shape, index, norm)
            let trailing = Array(shape.dropFirst())
            let count = try elementCount(trailing, norm)
            guard count > 0 else { return (trailing, []) }
            var out = [Float](repeating: 0, count: count)
            let status = out.withUnsafeMutableBufferPointer {
                cps_h5_dataset_read_slab(dset, Int32(CPS_H5_F32), Int64(index), $0.baseAddress)
            }
            if status < 0 { throw readError(norm) }
            return (trailing, out)
        }
    }

    /// Whether slab `index` of a chunked variable has been written (its first chunk is allocated
    /// in the file). After a crash this reflects the last flush, which is what `--resume` needs.
    public func isSlabWritten(_ name: String, index: Int) throws -> Bool {
        let norm = try normalized(name)
        return try withDataset(norm) { _, dset in
            let shape = try info(dset, norm).shape
            try checkSlabIndex(shape, index, norm)
            var offset = [Int64](repeating: 0, count: shape.count)
            offset[0] = Int64(index)
            let bytes = offset.withUnsafeBufferPointer { cps_h5_chunk_bytes(dset, $0.baseAddress, Int32(shape.count)) }
            if bytes < 0 { throw readError(norm) }
            return bytes > 0
        }
    }

    // MARK: internals

    /// Validates a root-level (single component) name.
    func topLevelName(_ name: String) throws -> String {
        let norm = try normalized(name)
        guard norm != "/", !norm.contains("/") else {
            throw HDF5Error.invalidArgument(file: path, object: name,
                                            reason: "dimensions and coordinates live at the root: use a name without '/'")
        }
        return norm
    }

    func requireAbsent(_ id: Int64, _ norm: String) throws {
        let kind = cps_h5_kind(id, norm)
        if kind < 0 { throw readError(norm) }
        if kind != Int32(CPS_H5_NONE) { throw HDF5Error.alreadyExists(file: path, object: norm) }
    }

    /// Size of root dimension `dim`; throws `missingObject` unless it is a 1-D dimension scale.
    func dimensionSize(_ id: Int64, _ dim: String) throws -> Int {
        guard cps_h5_kind(id, dim) == Int32(CPS_H5_DATASET) else {
            throw HDF5Error.missingObject(file: path, object: dim, expected: "dimension")
        }
        let dset = cps_h5_dataset_open(id, dim)
        guard dset >= 0 else { throw readError(dim) }
        defer { _ = cps_h5_close(dset) }
        let shape = try info(dset, dim).shape
        guard cps_h5_is_scale(dset) > 0, shape.count == 1 else {
            throw HDF5Error.missingObject(file: path, object: dim, expected: "dimension")
        }
        return shape[0]
    }

    /// Creates a dataset and returns its id (caller closes it).
    func createDataset(_ id: Int64, _ norm: String, _ type: HDF5ElementType, dims: [Int], chunk: [Int]?,
                       fill: FillValue?) throws -> Int64 {
        let dims64 = dims.map(Int64.init)
        let chunk64 = chunk?.map(Int64.init)
        let dset: Int64 = try dims64.withUnsafeBufferPointer { d in
            try withFill(fill, norm) { f in
                if let chunk64 {
                    return chunk64.withUnsafeBufferPointer { c in
                        cps_h5_dataset_create(id, norm, type.code, Int32(dims.count), d.baseAddress, c.baseAddress, 4, f)
                    }
                }
                return cps_h5_dataset_create(id, norm, type.code, Int32(dims.count), d.baseAddress, nil, -1, f)
            }
        }
        if dset < 0 { throw writeError(norm, "create dataset") }
        return dset
    }

    /// Attaches the scale of `dims[axis]` to each axis of `dset`.
    func attachScales(_ id: Int64, _ dset: Int64, _ norm: String, dims: [String]) throws {
        for (axis, dim) in dims.enumerated() {
            let scale = cps_h5_dataset_open(id, dim)
            guard scale >= 0 else { throw readError(dim) }
            defer { _ = cps_h5_close(scale) }
            if cps_h5_attach_scale(dset, scale, UInt32(axis)) < 0 {
                throw writeError(norm, "attach dimension scale \(dim) to axis \(axis)")
            }
        }
    }

    private func createScale(_ name: String, type: HDF5ElementType, count: Int,
                             write: (Int64) throws -> Int32) throws {
        let norm = try topLevelName(name)
        try requireWritable(norm)
        guard count >= 1 else {
            throw HDF5Error.invalidArgument(file: path, object: norm, reason: "a dimension needs at least one value")
        }
        try locked { id in
            try requireAbsent(id, norm)
            let dimID = try nextDimensionID(id)
            let dset = try createDataset(id, norm, type, dims: [count], chunk: nil, fill: nil)
            defer { _ = cps_h5_close(dset) }
            if try write(dset) < 0 { throw writeError(norm, "write") }
            if cps_h5_set_scale(dset, norm) < 0 { throw writeError(norm, "set dimension scale") }
            let status = withUnsafePointer(to: dimID) {
                cps_h5_attr_write(id, norm, "_Netcdf4Dimid", Int32(CPS_H5_I32), 0, 1, $0)
            }
            if status < 0 { throw writeError(norm, "write _Netcdf4Dimid") }
        }
    }

    /// One more than the largest `_Netcdf4Dimid` among root dimension scales (netCDF-C numbers
    /// dimensions 0, 1, ... in creation order).
    private func nextDimensionID(_ id: Int64) throws -> Int32 {
        var next: Int32 = 0
        for name in try childrenLocked(id, "/") where (try? dimensionSize(id, name)) != nil {
            next = max(next, 1)
            guard cps_h5_attr_exists(id, name, "_Netcdf4Dimid") > 0 else { continue }
            let attr = cps_h5_attr_open(id, name, "_Netcdf4Dimid")
            guard attr >= 0 else { continue }
            defer { _ = cps_h5_close(attr) }
            if let values: [Int32] = try? readNumeric(attr, code: Int32(CPS_H5_I32), count: 1, name),
               let v = values.first, v < Int32.max {
                next = max(next, v + 1)
            }
        }
        return next
    }

    /// Opens dataset `norm` for `body` (lock held, dataset closed afterwards).
    func withDataset<T>(_ norm: String, _ body: (Int64, Int64) throws -> T) throws -> T {
        try locked { id in
            let kind = cps_h5_kind(id, ObjectPath.shim(norm))
            if kind < 0 { throw readError(norm) }
            guard kind == Int32(CPS_H5_DATASET) else {
                if kind == Int32(CPS_H5_NONE) { throw HDF5Error.missingObject(file: path, object: norm, expected: "dataset") }
                throw HDF5Error.typeMismatch(file: path, object: norm, expected: "a dataset", found: "a group")
            }
            let dset = cps_h5_dataset_open(id, norm)
            guard dset >= 0 else { throw readError(norm) }
            let result: T
            do { result = try body(id, dset) } catch { _ = cps_h5_close(dset); throw error }
            // Closing writes the dataset's cached chunks: a chunk that cannot be written (ENOSPC,
            // EFBIG) fails here, and must not pass for written (the checkpoint would be marked
            // complete over a hole of fill values).
            if cps_h5_close(dset) < 0 { throw writeError(norm, "close") }
            return result
        }
    }

    private func checkSlabIndex(_ shape: [Int], _ index: Int, _ norm: String) throws {
        guard let first = shape.first else {
            throw HDF5Error.invalidArgument(file: path, object: norm, reason: "a scalar variable has no slabs")
        }
        guard index >= 0, index < first else {
            throw HDF5Error.indexOutOfRange(file: path, object: norm, index: index, count: first)
        }
    }

    private func writeSlab(_ name: String, _ index: Int, _ type: HDF5ElementType, _ count: Int,
                           _ body: (Int64) throws -> Int32) throws {
        let norm = try normalized(name)
        try requireWritable(norm)
        try withDataset(norm) { _, dset in
            let (code, shape) = try info(dset, norm)
            guard code == type.code else {
                throw HDF5Error.typeMismatch(file: path, object: norm, expected: type.description,
                                             found: describeStoredType(code))
            }
            try checkSlabIndex(shape, index, norm)
            let trailing = Array(shape.dropFirst())
            guard let expected = checkedProduct(trailing) else {
                throw HDF5Error.tooLarge(file: path, object: norm, elements: "\(trailing)")
            }
            guard count == expected else {
                throw HDF5Error.shapeMismatch(file: path, object: norm, expected: trailing, found: [count])
            }
            if try body(dset) < 0 { throw writeError(norm, "write slab \(index)") }
        }
    }

    private func writeWhole(_ name: String, _ type: HDF5ElementType, _ count: Int,
                            _ body: (Int64) throws -> Int32) throws {
        let norm = try normalized(name)
        try requireWritable(norm)
        try withDataset(norm) { _, dset in
            let (code, shape) = try info(dset, norm)
            guard code == type.code else {
                throw HDF5Error.typeMismatch(file: path, object: norm, expected: type.description,
                                             found: describeStoredType(code))
            }
            guard let expected = checkedProduct(shape) else {
                throw HDF5Error.tooLarge(file: path, object: norm, elements: "\(shape)")
            }
            guard count == expected else {
                throw HDF5Error.shapeMismatch(file: path, object: norm, expected: shape, found: [count])
            }
            if count > 0, try body(dset) < 0 { throw writeError(norm, "write") }
        }
    }

    private func readAll<T: Numeric>(_ name: String, expected: String, accepted: [Int], memory: Int)
        throws -> (shape: [Int], values: [T]) {
        let norm = try normalized(name)
        return try withDataset(norm) { _, dset in
            let (code, shape) = try info(dset, norm)
            guard accepted.contains(Int(code)) else {
                throw HDF5Error.typeMismatch(file: path, object: norm, expected: expected, found: describeStoredType(code))
            }
            let count = try elementCount(shape, norm)
            let values: [T] = try readNumeric(dset, code: Int32(memory), count: count, norm)
            return (shape, values)
        }
    }

    // MARK: fill values

    /// A fill value converted to the variable's element type.
    enum FillValue {
        case float32(Float), int32(Int32), int64(Int64), uint8(UInt8)
    }

    private func checkedFill(_ value: AttributeValue, type: HDF5ElementType, _ norm: String) throws -> FillValue? {
        func bad(_ why: String) -> HDF5Error {
            .invalidArgument(file: path, object: norm, reason: "fill value \(value) \(why) for a \(type) variable")
        }
        switch (type, value) {
        case let (.float32, .double(v)): return .float32(Float(v))
        case let (.int32, .int(v)):
            guard let x = Int32(exactly: v) else { throw bad("is out of range") }
            return .int32(x)
        case let (.int64, .int(v)): return .int64(v)
        case let (.uint8, .int(v)):
            guard let x = UInt8(exactly: v) else { throw bad("is out of range") }
            return .uint8(x)
        case (.string, .string("")):
            // No user-defined fill: unwritten elements are NULL strings, read as "". A custom
            // variable-length fill value would make HDF5 write it to the global heap on every
            // read of an unwritten chunk, which fails on read-only files ("no write intent").
            return nil
        case (.string, .string):
            throw HDF5Error.invalidArgument(file: path, object: norm,
                                            reason: "fill value \(value) is not supported: string variables always fill with \"\"")
        default:
            throw bad("has the wrong kind (float32 takes .double, integers .int, strings .string)")
        }
    }

    /// Calls `body` with a pointer to the fill element (nil for no fill).
    private func withFill<R>(_ fill: FillValue?, _ norm: String, _ body: (UnsafeRawPointer?) throws -> R) throws -> R {
        switch fill {
        case nil: return try body(nil)
        case let .float32(v): return try withUnsafePointer(to: v) { try body($0) }
        case let .int32(v): return try withUnsafePointer(to: v) { try body($0) }
        case let .int64(v): return try withUnsafePointer(to: v) { try body($0) }
        case let .uint8(v): return try withUnsafePointer(to: v) { try body($0) }
        }
    }
}
