// `cpiscope tokenize`: encode text with a tokenizer.json (ids, tokens, character offsets), or
// decode ids. The same ids and offsets as Python `Tokenizer.from_file(PATH).encode(text)`.
import ArgumentParser
import Foundation
import StrictJSON
import Tokenization

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Encode text with a tokenizer.json, or decode ids.",
        discussion: """
        Offsets are character (Unicode scalar) ranges in the original text, as Python `tokenizers` \
        reports them. PATH is a tokenizer.json or a folder containing one (a tokenizer_config.json \
        beside it supplies bos/eos tokens and add_bos_token). A tokenizer.json's padding and \
        truncation sections are never applied (a prompt is encoded whole, as transformers does by \
        default); a note on stderr, and "ignored_sections" in JSON output, say when a file had them.

        Examples:  cpiscope tokenize models/gpt2 --text "Paris is"
                   cpiscope tokenize models/gpt2 --text "Paris is" --format json
                   cpiscope tokenize models/gpt2 --decode 40313,318
        """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    @Argument(help: "A tokenizer.json file, or a folder containing one.")
    var path: String

    @Option(help: "The text to encode.")
    var text: String?

    @Option(name: .customLong("text-file"), help: "Encode the contents of this UTF-8 file instead of --text.")
    var textFile: String?

    @Flag(name: .customLong("no-special-tokens"), help: "Do not add the post-processor's special tokens (e.g. BOS).")
    var noSpecialTokens = false

    @Option(help: "Output format: text (a table) or json ({\"ids\", \"tokens\", \"offsets\", \"ignored_sections\"}).")
    var format: Format = .text

    @Option(help: "Comma-separated ids to decode into text, instead of encoding.")
    var decode: String?

    @Flag(name: .customLong("skip-special-tokens"), help: "With --decode: leave special tokens out of the text.")
    var skipSpecialTokens = false

    @Option(name: .customLong("bench-file"), help: ArgumentHelp("Time encoding of this file's text.", visibility: .hidden))
    var benchFile: String?

    @Option(name: .customLong("bench-repeat"), help: ArgumentHelp("Repetitions for --bench-file.", visibility: .hidden))
    var benchRepeat: Int = 3

    func validate() throws {
        let modes = [text != nil, textFile != nil, decode != nil, benchFile != nil].filter { $0 }.count
        guard modes == 1 else {
            throw ValidationError("give exactly one of --text, --text-file or --decode")
        }
        guard benchRepeat > 0 else { throw ValidationError("--bench-repeat must be positive") }
    }

    func run() throws {
        do {
            try execute()
        } catch let e as TokenizationError {
            Self.printError(e.description, hint: e.hint)
            throw ExitCode.failure
        }
    }

    private static func printError(_ message: String, hint: String) {
        FileHandle.standardError.write(Data("error: \(message)\nhint: \(hint)\n".utf8))
    }

    private func readText(_ file: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: file) else {
            Self.printError("cannot read \(file)", hint: "check that the file exists and is readable")
            throw ExitCode.failure
        }
        guard let s = String(validating: [UInt8](data), as: UTF8.self) else {
            Self.printError("\(file) is not valid UTF-8", hint: "convert the file to UTF-8")
            throw ExitCode.failure
        }
        return s
    }

    private func execute() throws {
        let tokenizer = try Tokenizer.load(from: URL(fileURLWithPath: path))
        if let decode {
            var ids: [Int] = []
            for part in decode.split(separator: ",") {
                guard let id = Int(part.trimmingCharacters(in: .whitespaces)) else {
                    Self.printError("--decode: \(String(reflecting: String(part))) is not an integer id", hint: "write ids as 1,2,3")
                    throw ExitCode.failure
                }
                ids.append(id)
            }
            print(tokenizer.decode(ids, skipSpecialTokens: skipSpecialTokens))
            return
        }
        if let benchFile {
            let content = try readText(benchFile)
            let b = try tokenizer.benchmarkEncode(content, repetitions: benchRepeat, addSpecialTokens: !noSpecialTokens)
            print("swift-cpiscope: \(b.summary)")
            return
        }
        let input = try text ?? readText(textFile ?? "")
        let encoding = try tokenizer.encode(input, addSpecialTokens: !noSpecialTokens)
        for note in Self.notes(tokenizer.ignoredSections) {
            FileHandle.standardError.write(Data("note: \(note)\n".utf8))
        }
        switch format {
        case .json:
            print(Self.json(encoding, ignored: tokenizer.ignoredSections))
        case .text:
            let scalars = Array(input.unicodeScalars)
            print("pos\tid\toffsets\ttoken\ttext")
            for i in 0..<encoding.count {
                let r = encoding.offsets[i]
                var slice = String()
                if r.lowerBound >= 0 && r.upperBound <= scalars.count { slice.unicodeScalars.append(contentsOf: scalars[r]) }
                let mark = encoding.isSpecial[i] ? "\t(special)" : ""
                print("\(i)\t\(encoding.ids[i])\t[\(r.lowerBound), \(r.upperBound))\t\(JSONValue.quoted(encoding.tokens[i]))\t\(JSONValue.quoted(slice))\(mark)")
            }
        }
    }

    /// The notes printed on stderr for a tokenizer.json's padding and truncation sections.
    static func notes(_ ignored: [IgnoredSection]) -> [String] {
        guard !ignored.isEmpty else { return [] }
        return ignored.map { "tokenizer.json has a \($0.kind.rawValue) section (\($0.summary)); it is ignored" }
            + [IgnoredSection.reason]
    }

    /// `{"ids":[...],"tokens":[...],"offsets":[[s,e],...],"ignored_sections":[...]}` on one line;
    /// each ignored section is `{"section": "padding", "summary": "..."}`.
    static func json(_ e: Encoding, ignored: [IgnoredSection]) -> String {
        let value = JSONValue.object([
            ("ids", .array(e.ids.map { .number(JSONNumber($0)) })),
            ("tokens", .array(e.tokens.map { .string($0) })),
            ("offsets", .array(e.offsets.map { .array([.number(JSONNumber($0.lowerBound)), .number(JSONNumber($0.upperBound))]) })),
            ("ignored_sections", .array(ignored.map { .object([("section", .string($0.kind.rawValue)), ("summary", .string($0.summary))]) })),
        ])
        return value.jsonText
    }
}
