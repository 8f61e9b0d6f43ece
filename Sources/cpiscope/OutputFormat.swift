import ArgumentParser
import StrictJSON

/// `--format` for commands that print results.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// `--format json` text: compact, from StrictJSON's one writer (`JSONValue.jsonText`). Build objects
/// with `jsonObject`, which sorts the members by key, so the output is deterministic.
func jsonString(_ value: JSONValue) -> String { value.jsonText }

/// An object whose members are sorted by key (UTF-8 byte order).
func jsonObject(_ members: [(String, JSONValue)]) -> JSONValue {
    .object(members.sorted { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }.map { (key: $0.0, value: $0.1) })
}

/// A number: integral doubles without `.0` (`16`); null for NaN and infinities, which JSON cannot write.
func jsonNumber(_ x: Double) -> JSONValue { JSONNumber(droppingZeroFraction: x).map(JSONValue.number) ?? .null }
func jsonNumber(_ n: Int) -> JSONValue { .number(JSONNumber(n)) }
