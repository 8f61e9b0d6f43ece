import ArgumentParser
struct LogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logits")
    func run() throws { throw ValidationError("not implemented yet") }
}
