// libFuzzer's entry point. In the fuzzing build (.ci/fuzz.sh: -sanitize=fuzzer,address -parse-as-library
// -D CPISCOPE_LIBFUZZER) libFuzzer supplies `main` and calls this for every input; the target is chosen
// by the environment variable CPISCOPE_FUZZ_TARGET (safetensors, config, tokenizer, encoder, probes,
// template, adapter). In the plain build the function is compiled too but only Replay.swift calls the runner.
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The target named by CPISCOPE_FUZZ_TARGET, read once.
let selectedFuzzTarget: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["CPISCOPE_FUZZ_TARGET"] ?? ""
    guard let t = FuzzTarget(rawValue: name) else {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
        FileHandle.standardError.write(Data("cpiscope-fuzz: set CPISCOPE_FUZZ_TARGET to one of: \(names)\n".utf8))
        exit(2)
    }
    guard t.isAvailable else {
        FileHandle.standardError.write(Data("cpiscope-fuzz: target '\(name)' is not in this build\n".utf8))
        exit(3)
    }
    return t
}()

/// Called by libFuzzer once before fuzzing: checks the target choice up front, so a wrong name is a
/// usage error rather than a "crash" in the first input. CPISCOPE_FUZZ_LIST=1 prints the targets
/// ("<name>\tavailable|unavailable") and exits; .ci/fuzz.sh uses it to skip targets not in the build.
@_cdecl("LLVMFuzzerInitialize")
public func cpiscopeFuzzInitialize(_ argc: UnsafeMutablePointer<CInt>?,
                                   _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> CInt {
    if ProcessInfo.processInfo.environment["CPISCOPE_FUZZ_LIST"] == "1" {
        for t in FuzzTarget.allCases { print("\(t.rawValue)\t\(t.isAvailable ? "available" : "unavailable")") }
        exit(0)
    }
    _ = selectedFuzzTarget
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func cpiscopeFuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    _ = FuzzRunner.run(selectedFuzzTarget, bytes)
    return 0
}

#if CPISCOPE_LIBFUZZER
// SwiftPM links a debug executable with `--defsym main=<module>_main` (so tests can link it), which
// would hide libFuzzer's own `main`. This is that symbol: it hands over to libFuzzer's driver.
// (In a build without the renaming, libFuzzer's `main` is used and this function is never called.)
@_silgen_name("LLVMFuzzerRunDriver")
func llvmFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@_cdecl("cpiscope_fuzz_main")
public func cpiscopeFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var vector = argv
    return withUnsafeMutablePointer(to: &count) { c in
        withUnsafeMutablePointer(to: &vector) { v in
            llvmFuzzerRunDriver(c, v, { data, size in cpiscopeFuzzTestOneInput(data, size) })
        }
    }
}
#endif
