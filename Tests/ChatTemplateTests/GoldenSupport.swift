// Loading Tests/Fixtures/chat-templates/goldens.json (written by Tools/goldens/make_chat_template_goldens.py
// with transformers 5.24.0 and jinja2 3.1.6) and comparing rendered text byte for byte.
import Foundation
import StrictJSON
import Testing
@testable import ChatTemplate

enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/chat-templates")

    static let goldens: JSONValue = {
        let path = root.appendingPathComponent("goldens.json").path
        do throws(JSONFileError) { return try JSONFile.parse(path: path, limit: 64 << 20) } catch { fatalError("cannot read \(path): \(error.reason)") }
    }()

    /// The instant the generator froze `datetime.now()` at (naive local time).
    static let frozenNow = BrokenDownTime(year: 2024, month: 7, day: 26, hour: 9, minute: 5, second: 3)

    static func conversation(_ name: String) -> [Value] {
        (goldens["conversations"]?[name]?.array ?? []).map { Value(json: $0) }
    }

    static func variables(_ json: JSONValue?) -> [String: Value] {
        var out: [String: Value] = [:]
        for (k, v) in json?.members ?? [] { out[k] = Value(json: v) }
        return out
    }
}

/// One render of a real template.
struct RealCase: Sendable, CustomTestStringConvertible {
    let family: String, template: String, conversation: String, addGenerationPrompt: Bool
    let variables: JSONValue?
    let expected: JSONValue

    var testDescription: String {
        "\(family)/\(template) \(conversation) agp=\(addGenerationPrompt)" + (variables.map { " +" + ($0.members ?? []).map(\.key).joined(separator: ",") } ?? "")
    }

    static let all: [RealCase] = (Fixtures.goldens["cases"]?.array ?? []).map { c in
        RealCase(family: c["family"]?.string ?? "", template: c["template"]?.string ?? "", conversation: c["conversation"]?.string ?? "",
                 addGenerationPrompt: c["add_generation_prompt"]?.bool ?? false, variables: c["variables"], expected: c)
    }
}

/// One synthetic template with its variables.
struct SyntheticCase: Sendable, CustomTestStringConvertible {
    let name: String, source: String
    let variables: JSONValue?
    let expected: JSONValue
    var testDescription: String { name }

    static let all: [SyntheticCase] = (Fixtures.goldens["synthetic"]?.array ?? []).map { c in
        SyntheticCase(name: c["name"]?.string ?? "", source: c["source"]?.string ?? "", variables: c["variables"], expected: c)
    }
}

/// Where two strings first differ, with both around it: the message of a failed golden comparison.
func firstDifference(_ got: String, _ want: String) -> String? {
    let a = Array(got.unicodeScalars), b = Array(want.unicodeScalars)
    var i = 0
    while i < a.count, i < b.count, a[i] == b[i] { i += 1 }
    if i == a.count, i == b.count { return nil }
    func around(_ s: [Unicode.Scalar]) -> String {
        let lo = max(0, i - 60), hi = min(s.count, i + 60)
        return String(String.UnicodeScalarView(s[lo..<hi])).debugDescription
    }
    return "first difference at code point \(i) (rendered \(a.count), golden \(b.count) code points)\n"
        + "  rendered: …\(around(a))…\n  golden:   …\(around(b))…"
}
