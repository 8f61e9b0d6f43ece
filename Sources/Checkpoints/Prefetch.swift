// Reading a checkpoint's weight files into the page cache ahead of use, on a background thread (issue 26):
// a trajectory job computes on checkpoint k while checkpoint k+1's weights come from disk, instead of
// faulting them in page by page during k+1's first pass.
//
// How: the tensors' byte ranges, in the order a forward pass uses them (embeddings, layer 0, 1, …, the
// final norm and the unembedding; `useOrder`), are read in chunks of `chunkBytes` through a private
// mapping of each chunk populated with MADV_POPULATE_READ (Linux 5.14+: the kernel reads the pages into
// the page cache and maps them, with no copy into user memory), then unmapped; where that is refused, by
// pread into a scratch buffer. The thread stops between two chunks when cancelled. Nothing here changes what a pass computes: the job maps the same files itself.
//
// Memory: the page cache holds at most one 13 GB checkpoint on a 24 GiB machine. Reading all of k+1
// while k computes would evict pages of k that its later decoding steps read again (or k+1's own first
// pages), so a prefetch has a byte limit (`limitBytes`): the job sets it to what the cache can hold
// beside the current checkpoint, and raises it to everything (`raiseLimit(to: .max)`) once k+1 becomes
// the current checkpoint, so the rest is read ahead of k+1's first pass in the order it is used.
//
// The first checkpoint of a job gets a prefetch of its own, unlimited, started at its load: its first pass
// then finds its pages read ahead in 16 MiB steps instead of faulting them in a readahead window at a time.
// Chunks already in the page cache (mincore) are skipped, so a warm run costs a page-table walk. The next
// checkpoint's prefetch starts reading only when the current one's has finished (`after`): one disk, read
// in the order the data is needed.
#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A background read of a checkpoint's weight files into the page cache. Start it with
/// `WeightPrefetch.start`; it stops by itself when everything up to its limit has been read, and when the
/// handle is released (the thread holds only the shared state, never the handle).
public final class WeightPrefetch: @unchecked Sendable {
    /// One contiguous byte range of one file, in the order of use.
    struct Range: Equatable {
        var file: Int
        var offset: Int
        var count: Int
    }

    /// Bytes read per step (one populate or pread call); cancellation and the limit act between steps.
    public static let chunkBytes = 16 << 20

    /// Bytes of all ranges (the checkpoint's weight bytes).
    public var totalBytes: Int { state.totalBytes }

    private let state: State

    init(paths: [String], ranges: [Range], limitBytes: Int) {
        state = State(paths: paths, ranges: ranges, limitBytes: limitBytes)
    }

    /// Starts reading the weights of the checkpoint folder `directory` (the files `WeightStore(directory:
    /// weightsFile:)` opens) into the page cache, in the order of use, up to `limitBytes` bytes; returns at
    /// once. Throws what opening the store throws (no weights, a malformed header).
    /// With `after`, reading starts once that prefetch has finished (or this one is cancelled).
    public static func start(checkpoint directory: URL, weightsFile: String? = nil, limitBytes: Int = .max,
                             after: WeightPrefetch? = nil) throws(CheckpointError) -> WeightPrefetch {
        let store = try WeightStore(directory: directory, weightsFile: weightsFile)
        let p = WeightPrefetch(paths: store.files.map(\.url.path), ranges: useOrder(store), limitBytes: limitBytes)
        p.state.after = after?.state
        p.launch()
        return p
    }

    /// Bytes read so far.
    public var bytesRead: Int { state.locked { $0.done } }

    /// Whether the thread has stopped (everything read, or cancelled).
    public var isFinished: Bool { state.locked { $0.finished } }

    /// Seconds from the start to the end of the reading (or to now while it runs).
    public var elapsedSeconds: Double {
        state.locked { s in
            let end = s.endTime ?? DispatchTime.now()
            return Double(end.uptimeNanoseconds - s.startTime.uptimeNanoseconds) / 1e9
        }
    }

    /// Lets the thread read up to `bytes` in total (`.max`: everything). A limit below what is read already
    /// has no effect.
    public func raiseLimit(to bytes: Int) { state.locked { $0.limit = max($0.limit, bytes) } }

    /// Stops the thread after the chunk in progress; what was read stays in the page cache.
    public func cancel() { state.locked { $0.cancelled = true } }

    /// Waits until the thread has read everything up to its limit, then stops it. For measurements and
    /// tests: a job never needs to wait for a prefetch.
    public func waitUntilLimit() {
        let c = state.condition
        c.lock()
        while !state.finished && state.done < min(state.limit, state.totalBytes) { c.wait() }
        state.cancelled = true
        c.broadcast()
        while !state.finished { c.wait() }
        c.unlock()
    }

    deinit { cancel() }

    private func launch() {
        let s = state
        let thread = Thread { s.run() }
        thread.name = "cpiscope-prefetch"
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// What the reading thread and the handle share, under `condition`.
    final class State: @unchecked Sendable {
        let paths: [String]
        let ranges: [Range]
        let totalBytes: Int
        let condition = NSCondition()
        var limit: Int
        /// Another prefetch to wait for before reading.
        var after: State? = nil
        var done = 0
        var cancelled = false
        var finished = false
        let startTime = DispatchTime.now()
        var endTime: DispatchTime? = nil

        init(paths: [String], ranges: [Range], limitBytes: Int) {
            self.paths = paths
            self.ranges = ranges
            self.totalBytes = ranges.reduce(0) { $0 + $1.count }
            self.limit = max(0, limitBytes)
        }

        /// Runs `body` under the lock and wakes the waiters.
        func locked<T>(_ body: (State) -> T) -> T {
            condition.lock()
            defer { condition.broadcast(); condition.unlock() }
            return body(self)
        }

        func run() {
            // No lower CPU priority: populating the page cache is CPU work in the kernel (about 4 s for 13 GB
            // here), and at nice 19 beside two busy compute threads the thread got ~1.5% of a core, so the
            // pass faulted the pages in itself (measured: no gain at all; BENCHMARKS.md, issue 26).
            if let first = after {
                first.condition.lock()
                while !first.finished && !locked({ $0.cancelled }) { _ = first.condition.wait(until: Date().addingTimeInterval(0.05)) }
                first.condition.unlock()
            }
            var fds: [Int32] = paths.map { open($0, O_RDONLY | O_CLOEXEC) }
            defer { for fd in fds where fd >= 0 { close(fd) } }
            var scratch: UnsafeMutableRawPointer? = nil
            defer { scratch?.deallocate() }
            var populate = true
            outer: for r in ranges {
                var offset = r.offset, left = r.count
                while left > 0 {
                    let n = min(left, WeightPrefetch.chunkBytes)
                    condition.lock()
                    while !cancelled && done >= limit { condition.wait() }
                    let stop = cancelled
                    condition.unlock()
                    if stop { break outer }
                    let fd = fds[r.file]
                    if fd >= 0 {
                        if populate { populate = WeightPrefetch.populate(fd: fd, offset: offset, count: n) }
                        if !populate {
                            if scratch == nil { scratch = UnsafeMutableRawPointer.allocate(byteCount: WeightPrefetch.chunkBytes, alignment: 4096) }
                            if !WeightPrefetch.readInto(scratch!, fd: fd, offset: offset, count: n) { close(fd); fds[r.file] = -1 }
                        }
                    }
                    offset += n; left -= n
                    locked { $0.done += n }
                }
            }
            locked { s in
                s.finished = true
                s.endTime = DispatchTime.now()
            }
        }
    }

    /// Maps `count` bytes of `fd` at `offset` and, unless every page is in the page cache already (mincore),
    /// asks the kernel to read them in (MADV_POPULATE_READ), then unmaps them. False where the kernel refuses
    /// (before Linux 5.14, other systems).
    static func populate(fd: Int32, offset: Int, count: Int) -> Bool {
        #if os(Linux)
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = offset / page * page, length = offset + count - start
        guard let map = mmap(nil, length, PROT_READ, MAP_SHARED, fd, off_t(start)), map != MAP_FAILED else { return false }
        defer { munmap(map, length) }
        var resident = [UInt8](repeating: 0, count: (length + page - 1) / page)
        if mincore(map, length, &resident) == 0 && resident.allSatisfy({ $0 & 1 == 1 }) { return true }
        let madvPopulateRead: Int32 = 22   // MADV_POPULATE_READ (linux/mman.h), absent from older headers
        return madvise(map, length, madvPopulateRead) == 0
        #else
        return false
        #endif
    }

    /// Reads `count` bytes of `fd` at `offset` into `buffer` (the data lands in the page cache); false on an
    /// error (the file is then skipped).
    static func readInto(_ buffer: UnsafeMutableRawPointer, fd: Int32, offset: Int, count: Int) -> Bool {
        var got = 0
        while got < count {
            let r = pread(fd, buffer, count - got, off_t(offset + got))
            if r < 0 && errno == EINTR { continue }
            if r <= 0 { return false }
            got += r
        }
        return true
    }

    /// The store's tensors as file byte ranges in the order a forward pass reads them: tensors named
    /// without a layer number that look like embeddings first (`embed`, `wte`, `wpe`), then each layer's
    /// tensors (the first number in the dotted name: `model.layers.12.…` → 12), then the rest (final norm,
    /// unembedding); within one key, file order. Adjacent ranges of one file are merged. Files that are not
    /// safetensors are read whole, first to last byte, after the others.
    static func useOrder(_ store: WeightStore) -> [Range] {
        var keyed: [(key: Int, file: Int, offset: Int, count: Int)] = []
        var whole: [Range] = []
        for (f, file) in store.files.enumerated() {
            guard let st = file as? SafeTensorsFile else { whole.append(Range(file: f, offset: 0, count: file.fileSize)); continue }
            let dataStart = 8 + st.headerLength
            // The header (and any padding before the data) belongs with the first use of the file.
            if dataStart > 0 { keyed.append((key: Int.min, file: f, offset: 0, count: dataStart)) }
            for info in st.tensors.values where info.byteCount > 0 {
                keyed.append((key: layerKey(info.name), file: f, offset: dataStart + info.byteRange.lowerBound, count: info.byteCount))
            }
        }
        keyed.sort { ($0.key, $0.file, $0.offset) < ($1.key, $1.file, $1.offset) }
        var out: [Range] = []
        for k in keyed {
            if var last = out.last, last.file == k.file, last.offset + last.count == k.offset {
                last.count += k.count
                out[out.count - 1] = last
            } else {
                out.append(Range(file: k.file, offset: k.offset, count: k.count))
            }
        }
        return out + whole
    }

    /// Where a tensor falls in a forward pass: −1 for an embedding, its layer for a layer's tensor
    /// (the first all-digit component of the dotted name), Int.max for anything else.
    static func layerKey(_ name: String) -> Int {
        for part in name.split(separator: ".") where !part.isEmpty && part.allSatisfy(\.isASCII) && part.allSatisfy(\.isNumber) {
            if let n = Int(part) { return n }
        }
        let lower = name.lowercased()
        if lower.contains("embed") || lower.contains("wte") || lower.contains("wpe") { return -1 }
        return Int.max
    }
}
