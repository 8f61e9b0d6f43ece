// The HDF5 layout of a criticality run (docs/hdf5-schema.md, "Criticality files"). This file is the one
// place that writes them; every name comes from `CriticalitySchema` (HDF5Store/CriticalitySchema.swift),
// which the reader, merge and the tests use too. Per-checkpoint variables have `checkpoint` first and are written one checkpoint
// at a time; `checkpoint_complete` turns 1 after each, so an interrupted run keeps what it finished.
import Foundation
import HDF5Store
import TrajectoryJob

/// One checkpoint's scores, `[example]` each (NaN where not scored).
public struct CriticalityScores: Sendable {
    public var nllWithSum: [Float]
    public var nllWithoutSum: [Float]
    public var nllWith: [Float]
    public var nllWithout: [Float]
    public var criticality: [Float]
    public var gain: [Float]

    public init(count: Int) {
        let nan = [Float](repeating: .nan, count: count)
        (nllWithSum, nllWithoutSum, nllWith, nllWithout, criticality, gain) = (nan, nan, nan, nan, nan, nan)
    }

    /// Records example k's sums, with `withTokens`/`withoutTokens` response tokens.
    public mutating func set(_ k: Int, withSum: Double?, withTokens: Int, withoutSum: Double, withoutTokens: Int) {
        let without = withoutSum / Double(withoutTokens)
        nllWithoutSum[k] = Float(withoutSum)
        nllWithout[k] = Float(without)
        criticality[k] = Float(Foundation.exp(without))
        if let withSum {
            let with = withSum / Double(withTokens)
            nllWithSum[k] = Float(withSum)
            nllWith[k] = Float(with)
            gain[k] = Float(without - with)
        }
    }
}

public final class CriticalityWriter: CheckpointFile {
    public let url: URL
    let file: HDF5File
    public let checkpoints: [String]
    public let exampleCount: Int

    /// Creates the file: coordinates, per-example variables and attributes. Removed again if this fails.
    public init(creating url: URL, checkpoints: [String], steps: [Int64], exampleIDs: [String], categories: [String],
                examples: [TokenizedExample], attributes: [String: AttributeValue], overwrite: Bool) throws {
        self.url = url
        self.checkpoints = checkpoints
        exampleCount = examples.count
        file = try HDF5File.create(at: url, overwrite: overwrite)
        do {
            try define(steps: steps, exampleIDs: exampleIDs, categories: categories, examples: examples, attributes: attributes)
            try file.flush()
        } catch {
            try? file.close()
            try? FileManager.default.removeItem(at: url)
            throw error
        }
    }

    /// Opens an interrupted run to finish it; refuses one of another job.
    public init(resuming url: URL, checkpoints: [String], exampleCount: Int, identity: [String: AttributeValue]) throws {
        self.url = url
        self.checkpoints = checkpoints
        self.exampleCount = exampleCount
        file = try HDF5File.open(at: url, writable: true)
        func refuse(_ d: String) -> CriticalityError { try? file.close(); return .resumeMismatch(path: url.path, detail: d) }
        guard (try? file.attribute(CriticalitySchema.versionAttribute)) != nil else { throw refuse("it is not a criticality file") }
        if (try? file.readStrings("checkpoint").values) != checkpoints { throw refuse("its checkpoints differ") }
        if (try? file.shape(of: CriticalitySchema.exampleID))?.first != exampleCount { throw refuse("its examples differ") }
        for (k, v) in identity.sorted(by: { $0.key < $1.key }) where (try? file.attribute(k)) != v {
            throw refuse("its \(k) differs")
        }
    }

    public func completed() throws -> [Bool] {
        try file.readUInt8(CriticalitySchema.checkpointComplete).values.map { $0 == 1 }
    }

    private func define(steps: [Int64], exampleIDs: [String], categories: [String], examples: [TokenizedExample],
                        attributes: [String: AttributeValue]) throws {
        typealias S = CriticalitySchema
        try file.createDimension(S.Dim.checkpoint, strings: checkpoints)
        try file.createCoordinate("step", along: S.Dim.checkpoint, ints: steps)
        try file.createDimension(S.Dim.example, ints: examples.map { Int64($0.index) })
        for v in S.variables { try file.createVariable(v) }
        try file.write(S.exampleID, strings: exampleIDs)
        try file.write(S.hasContext, uint8: examples.map { $0.hasContext ? 1 : 0 })
        try file.write(S.skipped, uint8: examples.map { $0.skipReason == nil ? 0 : 1 })
        try file.write(S.skipReason, strings: examples.map { $0.skipReason ?? "" })
        try file.write(S.category, strings: categories)
        for (name, values) in [(S.promptTokensWithContext, examples.map(\.promptTokensWithContext)),
                               (S.promptTokensWithoutContext, examples.map(\.promptTokensWithoutContext)),
                               (S.responseTokens, examples.map { $0.withoutContext?.scored ?? 0 }),
                               (S.responseTokensWithContext, examples.map { $0.withContext?.scored ?? 0 })] {
            try file.write(name, ints32: values.map { Int32(clamping: $0) })
        }
        var attrs = attributes
        attrs[S.versionAttribute] = .int(S.version)
        attrs["score_definition"] = .string(S.definition)
        attrs["complete"] = .int(0)
        for (k, v) in attrs.sorted(by: { $0.key < $1.key }) { try file.setAttribute(k, v) }
    }

    public func write(checkpoint i: Int, scores s: CriticalityScores, weightsHash: String) throws {
        typealias S = CriticalitySchema
        try file.writeSlab(S.nllWithContext, index: i, floats: s.nllWith)
        try file.writeSlab(S.nllWithoutContext, index: i, floats: s.nllWithout)
        try file.writeSlab(S.nllWithContextSum, index: i, floats: s.nllWithSum)
        try file.writeSlab(S.nllWithoutContextSum, index: i, floats: s.nllWithoutSum)
        try file.writeSlab(S.criticality, index: i, floats: s.criticality)
        try file.writeSlab(S.gain, index: i, floats: s.gain)
        try file.writeSlab(S.weightsSHA256, index: i, strings: [weightsHash])
        try file.markCheckpointComplete(i)
    }

    /// Marks the file complete (every checkpoint written).
    public func finish() throws {
        try file.markRunComplete()
    }

    public func setAttribute(_ name: String, _ value: AttributeValue) throws {
        try file.setAttribute(name, value)
        try file.flush()
    }

    /// One checkpoint's criticality column as written.
    public func criticality(checkpoint i: Int) throws -> [Float] {
        try file.readFloats(S.criticality, slab: i).values
    }
    private typealias S = CriticalitySchema

    public func close() { try? file.close() }
    public func abandon() { file.abandon() }
}
