// cpiscope-fuzz, plain build: replays inputs through the fuzz targets without libFuzzer.
//
//   cpiscope-fuzz TARGET PATH...     each PATH a file or a folder of files; prints one line per input:
//                                    "<file>\taccepted" or "<file>\trejected: <error>"; exit 0
//   cpiscope-fuzz --list             the targets, one per line ("<name>\tavailable|unavailable")
//
// A parser that traps kills this process (a non-zero, signalled exit): that is how the regression
// tests in Tests/CLITests/FuzzRegressionTests.swift detect a crash without taking the test runner down.
// The libFuzzer build (-parse-as-library -D CPISCOPE_LIBFUZZER) compiles none of this: libFuzzer owns `main`.
#if !CPISCOPE_LIBFUZZER
import Foundation

@main
enum FuzzReplay {
    static func main() { exit(replay()) }
}

func replay() -> Int32 {
    var args = Array(CommandLine.arguments.dropFirst())
    if args == ["--list"] {
        for t in FuzzTarget.allCases { print("\(t.rawValue)\t\(t.isAvailable ? "available" : "unavailable")") }
        return 0
    }
    guard args.count >= 2, let target = FuzzTarget(rawValue: args.removeFirst()) else {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")
        FileHandle.standardError.write(Data("usage: cpiscope-fuzz (\(names)) FILE|DIR...\n       cpiscope-fuzz --list\n".utf8))
        return 2
    }
    var files: [URL] = []
    for a in args {
        let url = URL(fileURLWithPath: a)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            FileHandle.standardError.write(Data("cpiscope-fuzz: no such file: \(a)\n".utf8))
            return 2
        }
        if isDir.boolValue {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
            files += names.sorted().filter { !$0.hasPrefix(".") }.map { url.appendingPathComponent($0) }
        } else {
            files.append(url)
        }
    }
    for f in files {
        guard let data = FileManager.default.contents(atPath: f.path) else {
            FileHandle.standardError.write(Data("cpiscope-fuzz: cannot read \(f.path)\n".utf8))
            return 2
        }
        let verdict = FuzzRunner.run(target, [UInt8](data))
        FileHandle.standardOutput.write(Data("\(f.lastPathComponent)\t\(verdict.line)\n".utf8))
    }
    return 0
}
#endif
