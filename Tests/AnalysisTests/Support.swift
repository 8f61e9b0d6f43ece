// AnalysisTests' goldens (Tests/Fixtures/analysis/goldens.json, Tools/analysis_goldens.py); the synthetic
// run writer and the naive statistics are in Tests/SyntheticRuns.
import Foundation
@_exported import SyntheticRuns

struct Goldens: Decodable {
    struct Seq: Decodable { let seed: UInt64; let outputs: [String] }
    struct SeqS: Decodable { let seed: String; let outputs: [String] }
    struct Index: Decodable { let seed: UInt64; let n: Int; let outputs: [Int] }
    struct Pct: Decodable { let data: [Double]; let q: [Double]; let values: [Double] }
    struct Ranks: Decodable { let data: [Double]; let ranks: [Double] }
    struct Sp: Decodable { let x: [Double]; let y: [Double]; let rho: Double }
    struct Boot: Decodable { let d: [Double]; let seed: UInt64; let resamples: Int; let mean: Double; let low: Double; let high: Double }
    let splitmix64: [Seq]
    let xoshiro256starstar: [SeqS]
    let index_below: Index
    let percentile: Pct
    let ranks: Ranks
    let spearman: [Sp]
    let bootstrap: [Boot]

    static func load() throws -> Goldens {
        let url = packageRoot.appendingPathComponent("Tests/Fixtures/analysis/goldens.json")
        return try JSONDecoder().decode(Goldens.self, from: Data(contentsOf: url))
    }
}
