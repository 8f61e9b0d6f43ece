// CSV tables (RFC 4180: comma-separated, CRLF-free "\n" line ends, fields with a comma, quote or
// line break are quoted and quotes doubled). Numbers use Swift's shortest round-trip form; NaN
// (no data) is an empty field.

/// A CSV table built row by row.
struct CSVTable {
    let header: [String]
    private(set) var rows: [[String]] = []

    init(_ header: [String]) { self.header = header }

    enum Cell {
        case text(String)
        case number(Double)
        case int(Int)
    }

    mutating func add(_ cells: [Cell]) {
        precondition(cells.count == header.count, "CSV row width")
        rows.append(cells.map {
            switch $0 {
            case .text(let s): return s
            case .number(let x): return x.isFinite ? "\(x)" : ""
            case .int(let i): return String(i)
            }
        })
    }

    static func field(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
            ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }

    var text: String {
        ([header] + rows).map { $0.map(Self.field).joined(separator: ",") }.joined(separator: "\n") + "\n"
    }
}
