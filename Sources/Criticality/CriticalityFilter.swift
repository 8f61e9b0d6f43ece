// The paper's data filter (Goyal, Baek et al. §3.4): drop the P% of examples *with a context* whose
// response has the lowest perplexity without that context (the model can answer them from memory, so they
// teach it to ignore the context). Ties are broken by the example's index, so the result is deterministic.
// The filtered file keeps the data's own container (JSON array, JSONL lines byte for byte, SQuAD's nested
// release) and order; a sidecar JSON lists what was removed and why.
import Foundation
import StrictJSON

public enum CriticalityFilter {
    /// Indices to remove: among scored examples with a context (`criticality` finite, `hasContext`), the
    /// floor(count × percent / 100) with the lowest criticality, ties by index; sorted by index.
    public static func removals(criticality: [Float], hasContext: [Bool], percent: Double) -> [Int] {
        let candidates = criticality.indices.filter { hasContext[$0] && criticality[$0].isFinite }
        let k = Int((Double(candidates.count) * percent / 100).rounded(.down))
        let ranked = candidates.sorted { (criticality[$0], $0) < (criticality[$1], $1) }
        return ranked.prefix(k).sorted()
    }

    /// Parses "25%", "25" or "12.5%" into a percentage in 0...100.
    public static func percent(_ text: String) throws -> Double {
        let t = text.trimmingCharacters(in: .whitespaces)
        let number = t.hasSuffix("%") ? String(t.dropLast()) : t
        guard let p = Double(number), p.isFinite, (0...100).contains(p) else { throw CriticalityError.badPercent(text) }
        return p
    }

    /// Writes `dataset` minus `removed` to `url` in the dataset's own container, and the sidecar
    /// `<url minus extension>.removed.json`. Written to temporary files and renamed, so a failure leaves
    /// no half-written data file.
    public static func write(_ dataset: InstructionDataset, removing removed: [Int], criticality: [Float], percent: Double,
                             checkpoint: String, to url: URL) throws -> URL {
        let drop = Set(removed)
        var text = ""
        switch dataset.container {
        case .jsonLines(let lines):
            for (k, line) in lines.enumerated() where !drop.contains(k) { text += line + "\n" }
        case .jsonArray(let rows):
            let kept = rows.enumerated().filter { !drop.contains($0.offset) }.map { "    " + $0.element.jsonText }
            text = kept.isEmpty ? "[]\n" : "[\n" + kept.joined(separator: ",\n") + "\n]\n"
        case let .squadNested(doc, paths):
            text = squadWithout(doc, paths: paths, drop: drop).jsonText + "\n"
        }
        var entries: [JSONValue] = []
        for k in removed {
            entries.append(.object([("index", .number(JSONNumber(k))), ("id", .string(dataset.examples[k].id)),
                                    ("criticality", JSONNumber(Double(criticality[k])).map(JSONValue.number) ?? .null)]))
        }
        let candidates = criticality.indices.filter { dataset.examples[$0].hasContext && criticality[$0].isFinite }.count
        let sidecar: JSONValue = .object([
            ("source", .string(dataset.url.path)),
            ("rule", .string("removed the floor(count_with_context × percent / 100) examples with a context whose response has the lowest perplexity without the context (criticality) at the checkpoint; ties by index (Goyal, Baek et al. §3.4)")),
            ("percent", JSONNumber(percent).map(JSONValue.number) ?? .null),
            ("checkpoint", .string(checkpoint)),
            ("count", .number(JSONNumber(dataset.examples.count))),
            ("count_with_context", .number(JSONNumber(candidates))),
            ("removed", .array(entries)),
        ])
        let sidecarURL = url.deletingPathExtension().appendingPathExtension("removed.json")
        try atomicWrite(text, to: url)
        try atomicWrite(prettyArrayMembers(sidecar) + "\n", to: sidecarURL)
        return sidecarURL
    }

    /// SQuAD's nested release without the questions in `drop` (paragraphs and articles stay, possibly empty).
    static func squadWithout(_ doc: JSONValue, paths: [InstructionDataset.SquadPath], drop: Set<Int>) -> JSONValue {
        var dropped = Set<[Int]>()
        for k in drop { let p = paths[k]; dropped.insert([p.article, p.paragraph, p.question]) }
        func replace(_ v: JSONValue, key: String, with f: (JSONValue) -> JSONValue) -> JSONValue {
            guard let m = v.members else { return v }
            return .object(m.map { $0.key == key ? ($0.key, f($0.value)) : $0 })
        }
        return replace(doc, key: "data") { data in
            .array((data.array ?? []).enumerated().map { a, article in
                replace(article, key: "paragraphs") { ps in
                    .array((ps.array ?? []).enumerated().map { p, paragraph in
                        replace(paragraph, key: "qas") { qs in
                            .array((qs.array ?? []).enumerated().filter { !dropped.contains([a, p, $0.offset]) }.map(\.element))
                        }
                    })
                }
            })
        }
    }

    /// An object with one member per line (arrays of objects one element per line): readable, still JSON.
    static func prettyArrayMembers(_ v: JSONValue) -> String {
        guard let m = v.members else { return v.jsonText }
        let lines = m.map { key, value -> String in
            if let a = value.array, !a.isEmpty {
                return "  " + JSONValue.string(key).jsonText + ": [\n" + a.map { "    " + $0.jsonText }.joined(separator: ",\n") + "\n  ]"
            }
            return "  " + JSONValue.string(key).jsonText + ": " + value.jsonText
        }
        return "{\n" + lines.joined(separator: ",\n") + "\n}"
    }

    static func atomicWrite(_ text: String, to url: URL) throws {
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        do {
            try Data(text.utf8).write(to: tmp)
            if FileManager.default.fileExists(atPath: url.path) { try FileManager.default.removeItem(at: url) }
            try FileManager.default.moveItem(at: tmp, to: url)
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            throw CriticalityError.filteredWriteFailed(path: url.path, detail: "\(error)")
        }
    }
}
