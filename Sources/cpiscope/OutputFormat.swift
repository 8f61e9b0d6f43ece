import ArgumentParser

/// `--format` for commands that print results.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// Serialises a JSON-compatible value deterministically (sorted keys), for --format json.
func jsonString(_ value: Any) -> String {
    guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes]) else { return "{}" }
    return String(decoding: data, as: UTF8.self)
}

import Foundation
