import Foundation

/// The repository root (three levels above this file).
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let fixtures = repoRoot.appendingPathComponent("Tests/Fixtures")
let demoDir = repoRoot.appendingPathComponent("Demo")

func tempDir() throws -> URL {
    let d = FileManager.default.temporaryDirectory.appendingPathComponent("cpiscope-crit-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
    return d
}

/// Writes `text` to a new file in `dir`.
func write(_ text: String, _ name: String, in dir: URL) throws -> URL {
    let u = dir.appendingPathComponent(name)
    try Data(text.utf8).write(to: u)
    return u
}
