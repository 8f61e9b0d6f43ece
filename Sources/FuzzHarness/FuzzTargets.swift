// The fuzz targets: one per parser of untrusted files. Each takes arbitrary bytes, runs the parser
// (and, when the bytes parse, the code that consumes the result), and reports whether the input was
// accepted or rejected with an error. Nothing here may trap: a trap, an out-of-bounds access (ASan)
// or an allocation over libFuzzer's -malloc_limit_mb is a bug in the parser, never in the input.
//
// The same code runs under libFuzzer (LibFuzzerEntry.swift, built with -sanitize=fuzzer) and in the
// plain replay executable (Replay.swift), which is how the regression inputs are replayed in tests.
import ChatTemplate
import Checkpoints
import Criticality
import Models
import TensorCore
import Foundation
import ProbeKit
import Tokenization

#if canImport(Glibc)
import Glibc
#endif

/// The parsers under fuzzing.
enum FuzzTarget: String, CaseIterable, Sendable {
    /// `model.safetensors`: the 8-byte length, the JSON header, the offsets; then every float tensor is decoded.
    case safetensors
    /// `config.json` of a checkpoint.
    case config
    /// `tokenizer.json` (bytes before the first NUL) and, optionally, `tokenizer_config.json` (after it);
    /// a tokenizer that loads then encodes and decodes a few fixed texts.
    case tokenizer
    /// The encoder on arbitrary text, with the fixture tokenizers (first byte picks one).
    case encoder
    /// Probe files (JSON array or JSONL); every probe that loads is built into a prompt and tokenized.
    case probes
    /// Prompt template files; a template that parses is used to build a fixed probe.
    case template
    /// `adapter_config.json` of a PEFT LoRA checkpoint.
    case adapter
    /// `pytorch_model.bin` / `*.pt`: the zip directory, the restricted unpickler, storages and views;
    /// then every float tensor is decoded (TorchCheckpoint.swift).
    case torchZip = "torch-zip"
    /// Instruction data for `cpiscope criticality` (Alpaca JSON/JSONL, SQuAD nested or rows), format detected;
    /// data that loads is tokenized under the alpaca template and written back filtered, then re-read.
    case instructionData = "instruction-data"
    /// A Jinja chat template (Sources/ChatTemplate): parsed, then rendered with a fixed conversation, with and
    /// without the generation prompt, under tight limits; any error is fine, a trap or a hang is a bug.
    case chatTemplate = "chat-template"

    /// False while the parser is not in this build (see `adapter`).
    var isAvailable: Bool {
        switch self {
        case .adapter: return FuzzTarget.adapterParser != nil
        default: return true
        }
    }

    /// The adapter-config parser (`AdapterConfig.parse(_:file:)`, Sources/Checkpoints/AdapterConfig.swift);
    /// seed corpus in Tests/Fixtures/fuzz-corpus/adapter/.
    static let adapterParser: (@Sendable ([UInt8]) throws -> Void)? = { bytes in
        _ = try AdapterConfig.parse(bytes, file: "adapter_config.json")
    }
}

/// What one input did.
enum FuzzVerdict: Sendable, Equatable {
    case accepted
    case rejected(String)
    case unavailable

    var line: String {
        switch self {
        case .accepted: return "accepted"
        case .rejected(let why): return "rejected: " + why
        case .unavailable: return "unavailable"
        }
    }
}

enum FuzzRunner {
    /// Runs one input through `target`.
    static func run(_ target: FuzzTarget, _ bytes: [UInt8]) -> FuzzVerdict {
        do {
            switch target {
            case .safetensors: try safetensors(bytes)
            case .torchZip: try torchZip(bytes)
            case .config: _ = try ModelConfig.parse(Data(bytes), source: URL(fileURLWithPath: "config.json"))
            case .tokenizer: try tokenizer(bytes)
            case .encoder: try encoder(bytes)
            case .probes: try probes(bytes)
            case .template: try template(bytes)
            case .instructionData: try instructionData(bytes)
            case .chatTemplate: try chatTemplate(bytes)
            case .adapter:
                guard let parse = FuzzTarget.adapterParser else { return .unavailable }
                try parse(bytes)
            }
            return .accepted
        } catch {
            let text = "\(error)"
            // Every error the user can see is one line (the CLI prints it after "error: ").
            if text.contains(where: { $0 == "\n" || $0 == "\r" || $0 == "\r\n" }) { invariantFailed(target, "error text spans lines: \(text.debugDescription)") }
            return .rejected(text)
        }
    }

    // MARK: safetensors

    /// The reader maps a file, so the bytes go through a scratch file (on tmpfs when there is one).
    static func safetensors(_ bytes: [UInt8]) throws {
        let file = try SafeTensorsFile(url: writeScratch(bytes, .safetensors))
        for name in file.namesInFileOrder {
            guard let info = file.tensors[name] else { invariantFailed(.safetensors, "name \(name) without info") }
            if info.byteRange.upperBound > file.dataLength { invariantFailed(.safetensors, "\(name) ends past the data") }
        }
        try decodeAll(file, .safetensors)
    }

    /// The torch reader maps its file too; every tensor's bytes are read through `floatTensor` or summed.
    static func torchZip(_ bytes: [UInt8]) throws {
        let file = try TorchZipFile(url: writeScratch(bytes, .torchZip))
        for name in file.namesInFileOrder {
            guard let info = file.tensors[name] else { invariantFailed(.torchZip, "name \(name) without info") }
            if file.rawBytes(info).count != info.elementCount * info.dtype.byteSize { invariantFailed(.torchZip, "\(name): byte count") }
            if info.dtype.isReadableAsFloat { continue }
            blackHole(file.rawBytes(info).reduce(0) { $0 &+ Int($1) })
        }
        try decodeAll(file, .torchZip)
    }

    /// Decodes every float tensor of a weight file, checking its element count.
    static func decodeAll(_ file: any WeightFile, _ target: FuzzTarget) throws {
        var checksum: Float = 0
        for name in file.namesInFileOrder {
            guard let info = file.tensors[name], info.dtype.isReadableAsFloat else { continue }
            let t = try file.floatTensor(info)
            if t.count != info.elementCount { invariantFailed(target, "\(name): \(t.count) elements, header says \(info.elementCount)") }
            if t.count > 0 { checksum += t.pointer[0] + t.pointer[t.count - 1] }
        }
        blackHole(checksum)
    }

    /// Writes the input to the scratch file and returns its URL.
    static func writeScratch(_ bytes: [UInt8], _ target: FuzzTarget) -> URL {
        let url = scratchFile
        let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { invariantFailed(target, "cannot write the scratch file \(url.path)") }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if n <= 0 { close(fd); invariantFailed(target, "short write to \(url.path)") }
            written += n
        }
        close(fd)
        return url
    }

    static let scratchFile: URL = {
        let dir = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let url = URL(fileURLWithPath: dir).appendingPathComponent("cpiscope-fuzz-\(getpid()).safetensors")
        atexit { unlink(FuzzRunner.scratchFile.path) }   // libFuzzer ends with exit() after -max_total_time
        return url
    }()

    // MARK: tokenizer

    static let sampleTexts = ["Hello world", "  Paris is\tthe capital of France.\n", "Ünïcödé 𝔘 🇫🇷 日本語",
                              "<|endoftext|><s></s> <unk>", "", " ", "a\u{0}b\r\n\u{301}"]

    static func tokenizer(_ bytes: [UInt8]) throws {
        let json: [UInt8], config: [UInt8]?
        if let nul = bytes.firstIndex(of: 0) {
            json = Array(bytes[..<nul]); config = Array(bytes[(nul + 1)...])
        } else {
            json = bytes; config = nil
        }
        let t = try Tokenizer.load(tokenizerJSON: json, configJSON: config)
        for text in sampleTexts {
            for special in [true, false] { try checkEncoding(t, text, addSpecialTokens: special, target: .tokenizer) }
        }
        // Generated ids come from the model, whose vocabulary may be larger than the tokenizer's.
        blackHole(t.decode([0, 1, 2, 3, 255, 256, 50_000, -1, Int.max, Int.min], skipSpecialTokens: false))
        blackHole(t.decode([0, 1, 2, -5], skipSpecialTokens: true))
    }

    /// The fixture tokenizers, loaded once (the encoder target picks one by the input's first byte).
    static let fixtureTokenizers: [Tokenizer] = {
        let root = packageRoot.appendingPathComponent("Tests/Fixtures")
        let files = ["probe-trajectory/tokenizer.json", "probe-gpt2/tokenizer.json"]
        var out: [Tokenizer] = []
        for f in files {
            if let t = try? Tokenizer.load(from: root.appendingPathComponent(f)) { out.append(t) }
        }
        if let extra = ProcessInfo.processInfo.environment["CPISCOPE_FUZZ_TOKENIZERS"] {
            for p in extra.split(separator: ":") { if let t = try? Tokenizer.load(from: URL(fileURLWithPath: String(p))) { out.append(t) } }
        }
        return out
    }()

    static func encoder(_ bytes: [UInt8]) throws {
        let tokenizers = fixtureTokenizers
        guard let first = bytes.first, !tokenizers.isEmpty else {
            if tokenizers.isEmpty { invariantFailed(.encoder, "no fixture tokenizer loaded from \(packageRoot.path)") }
            return
        }
        let t = tokenizers[Int(first) % tokenizers.count]
        let text = String(decoding: bytes.dropFirst(), as: UTF8.self)
        try checkEncoding(t, text, addSpecialTokens: first & 0x80 != 0, target: .encoder)
    }

    /// Encodes `text` and checks what every caller relies on: parallel arrays, offsets inside the text.
    static func checkEncoding(_ t: Tokenizer, _ text: String, addSpecialTokens: Bool, target: FuzzTarget) throws {
        let e = try t.encode(text, addSpecialTokens: addSpecialTokens)
        let scalars = text.unicodeScalars.count
        guard e.ids.count == e.offsets.count, e.ids.count == e.tokens.count else {
            invariantFailed(target, "encoding arrays differ in length")
        }
        for (i, r) in e.offsets.enumerated() where r.lowerBound < 0 || r.upperBound > scalars {
            invariantFailed(target, "token \(i) has offsets \(r) outside 0..<\(scalars) for \(text.debugDescription)")
        }
        blackHole(t.decode(e.ids, skipSpecialTokens: true))
    }

    // MARK: probes and templates

    struct Encoder: TextEncoder {
        let tokenizer: Tokenizer
        func encodeWithOffsets(_ text: String, addSpecialTokens: Bool) throws -> (ids: [Int], offsets: [Range<Int>]) {
            let e = try tokenizer.encode(text, addSpecialTokens: addSpecialTokens)
            return (e.ids, e.offsets)
        }
    }

    static func probes(_ bytes: [UInt8]) throws {
        let set = try ProbeSetLoader.parse(data: Data(bytes), path: "probes.jsonl")
        guard let tokenizer = fixtureTokenizers.first else { invariantFailed(.probes, "no fixture tokenizer") }
        // Later steps reject single probes; the fuzzer keeps going with the rest.
        for probe in set.probes.prefix(16) {
            for template in [PromptTemplate.plain, .alpaca] {
                guard let built = try? PromptBuilder.build(probe, template: template) else { continue }
                guard let t = try? TokenizedProbe(built, encoder: Encoder(tokenizer: tokenizer)) else { continue }
                if t.answerPosition < 0 || t.answerPosition >= max(1, t.promptIDs.count) {
                    invariantFailed(.probes, "answer position \(t.answerPosition) outside \(t.promptIDs.count) prompt tokens")
                }
                for (_, positions) in t.spanPositions where positions.contains(where: { $0 < 0 || $0 >= t.promptIDs.count }) {
                    invariantFailed(.probes, "span position outside the prompt")
                }
                blackHole(answerAppears(probe.answer, in: built.prompt))
            }
        }
    }

    static let templateProbe = Probe(id: "t", context: "Paris moved to Marseille.", question: "What is the capital of France?",
                                     answer: "Marseille", memoryAnswer: "Paris", subject: "France")

    static func template(_ bytes: [UInt8]) throws {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw FuzzInputError.notUTF8 }
        let template = try PromptTemplate.parse(text, name: "template.txt")
        let built = try PromptBuilder.build(templateProbe, template: template)
        if let tokenizer = fixtureTokenizers.first {
            blackHole(try? TokenizedProbe(built, encoder: Encoder(tokenizer: tokenizer)))
        }
    }

    // MARK: instruction data

    static func instructionData(_ bytes: [UInt8]) throws {
        let url = writeScratch(bytes, .instructionData)
        let data = try InstructionDataLoader.load(url: url)
        if data.examples.isEmpty { invariantFailed(.instructionData, "a dataset without examples loaded") }
        for (k, e) in data.examples.enumerated() where e.index != k { invariantFailed(.instructionData, "example \(k) has index \(e.index)") }
        if let tokenizer = fixtureTokenizers.first {
            let t = try CriticalityTokens.tokenize(Array(data.examples.prefix(16)), template: InstructionTemplate.builtin("alpaca")!,
                                                   tokenizer: tokenizer, eos: tokenizer.eosTokenID, limit: 256, limitByModel: true)
            for e in t { for s in e.sequences where s.scored < 1 || s.scored >= s.ids.count || s.ids.count > 256 {
                invariantFailed(.instructionData, "example \(e.index): \(s.scored) scored of \(s.ids.count) tokens")
            } }
        }
        // Filtering the first example out and reading the result back keeps the rest.
        let out = URL(fileURLWithPath: scratchFile.path + ".filtered")
        defer { unlink(out.path); unlink(out.deletingPathExtension().appendingPathExtension("removed.json").path) }
        _ = try CriticalityFilter.write(data, removing: [0], criticality: data.examples.map { _ in 1 }, percent: 0, checkpoint: "c", to: out)
        if data.examples.count > 1 {
            let back = try InstructionDataLoader.load(url: out, format: data.format, fields: data.fields)
            if back.examples.count != data.examples.count - 1 {
                invariantFailed(.instructionData, "filtered file holds \(back.examples.count) examples, expected \(data.examples.count - 1)")
            }
        }
    }

    // MARK: chat templates

    static let chatMessages = [ChatMessage(role: "system", content: "Be brief. «é» \"q\" \n tab\t"),
                               ChatMessage(role: "user", content: "  What is the capital of France?  "),
                               ChatMessage(role: "assistant", content: "Paris."),
                               ChatMessage(role: "user", content: "And Japan? <|im_end|>{{ x }}")]

    /// Limits that keep each input well under the 20 s libFuzzer timeout in a sanitized debug build.
    static let chatLimits: ChatTemplateLimits = {
        var l = ChatTemplateLimits()
        l.maxSteps = 300_000
        l.maxIterations = 20_000
        l.maxOutputBytes = 1 << 20
        l.maxCollectionCount = 100_000
        return l
    }()

    static func chatTemplate(_ bytes: [UInt8]) throws {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw FuzzInputError.notUTF8 }
        let template = try ChatTemplate(source: text, specialTokens: [SpecialToken(name: "bos_token", content: "<s>"),
                                                                      SpecialToken(name: "eos_token", content: "</s>")],
                                        limits: chatLimits)
        let now = BrokenDownTime(year: 2024, month: 7, day: 26, hour: 9, minute: 5, second: 3)
        for generationPrompt in [false, true] {
            let first = try template.render(messages: chatMessages, addGenerationPrompt: generationPrompt, now: now)
            if first.utf8.count > chatLimits.maxOutputBytes { invariantFailed(.chatTemplate, "output of \(first.utf8.count) bytes passed the limit") }
            // Rendering is a pure function of the template and its inputs.
            let again = try template.render(messages: chatMessages, addGenerationPrompt: generationPrompt, now: now)
            if first != again { invariantFailed(.chatTemplate, "two renders differ") }
        }
    }

    // MARK: support

    /// The package root, from this file's path (Sources/FuzzHarness/FuzzTargets.swift) or CPISCOPE_ROOT.
    static let packageRoot: URL = {
        if let r = ProcessInfo.processInfo.environment["CPISCOPE_ROOT"] { return URL(fileURLWithPath: r) }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }()

    /// A broken invariant is a bug: stop here so libFuzzer records the input.
    static func invariantFailed(_ target: FuzzTarget, _ what: String) -> Never {
        FileHandle.standardError.write(Data("cpiscope-fuzz [\(target.rawValue)]: invariant broken: \(what)\n".utf8))
        abort()
    }
}

enum FuzzInputError: Error, CustomStringConvertible {
    case notUTF8
    var description: String { "the input is not UTF-8" }
}

/// Keeps a value alive so the optimizer cannot drop the work that produced it.
@inline(never) func blackHole<T>(_ value: T) { withExtendedLifetime(value) {} }
