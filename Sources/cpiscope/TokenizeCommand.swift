import ArgumentParser
// Placeholder: replaced by the tokenizer work (issue 3).
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokenize", abstract: "Encode text with a tokenizer.json.")
    func run() throws { throw ValidationError("tokenize is not implemented yet") }
}
