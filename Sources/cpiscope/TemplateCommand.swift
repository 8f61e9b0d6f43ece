// `cpiscope template render`: a model folder's chat template applied to a conversation, as transformers'
// apply_chat_template(messages, tokenize=False, add_generation_prompt=…) renders it, so that users can see
// exactly what `--template chat` gives the model.
import ArgumentParser
import ChatTemplate
import Foundation
import StrictJSON
import Tokenization

struct TemplateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "template",
        abstract: "Show what a model's chat template makes of a conversation.",
        subcommands: [Render.self])

    struct Render: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "render",
            abstract: "Render a conversation through a model folder's chat template (as apply_chat_template).",
            discussion: """
            DIR holds chat_template.jinja, or a tokenizer_config.json with a chat_template field (a string, \
            or a list of named templates: --name). The special tokens of tokenizer_config.json (bos_token, \
            eos_token, …) are passed to the template. MESSAGES is a JSON array of {"role": …, "content": …} \
            objects. With --format json the output is {"text": …, "ids": […]}, the ids when DIR has a \
            tokenizer.json (encoded without adding special tokens: the template writes them, as \
            apply_chat_template(tokenize=True)).

            Examples:
              cpiscope template render models/smollm2-instruct --messages chat.json --add-generation-prompt
              cpiscope template render Tests/Fixtures/probe-trajectory --messages chat.json --format json
            """)

        enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }

        @Argument(help: "A model folder (chat_template.jinja or tokenizer_config.json).")
        var dir: String

        @Option(help: "A JSON file: an array of {\"role\": …, \"content\": …} messages.")
        var messages: String

        @Flag(help: "End with the template's generation prompt (the assistant turn's opening), as a probe prompt does.")
        var addGenerationPrompt = false

        @Option(help: "Which of the folder's named templates (default: \"default\").")
        var name: String?

        @Option(help: "text (the rendered prompt as is) or json ({\"text\", \"ids\"}).")
        var format: Format = .text

        func run() throws {
            let folder = URL(fileURLWithPath: dir)
            let conversation = try Self.readMessages(URL(fileURLWithPath: messages))
            let template = try ChatTemplate.load(modelDirectory: folder, name: name)
            let text = try template.render(messages: conversation, addGenerationPrompt: addGenerationPrompt)
            switch format {
            case .text:
                FileHandle.standardOutput.write(Data(text.utf8))
                if !text.hasSuffix("\n") { FileHandle.standardOutput.write(Data("\n".utf8)) }
            case .json:
                var members: [(String, JSONValue)] = [("text", .string(text))]
                if FileManager.default.fileExists(atPath: folder.appendingPathComponent("tokenizer.json").path) {
                    let ids = try Tokenizer.load(from: folder).encode(text, addSpecialTokens: false).ids
                    members.append(("ids", .array(ids.map { .number(JSONNumber($0)) })))
                }
                print(JSONValue.object(members).jsonText)
            }
        }

        /// The messages of a conversation file; errors name the file and the message at fault.
        static func readMessages(_ url: URL) throws -> [ChatMessage] {
            let data: Data
            do { data = try Data(contentsOf: url) } catch {
                throw CLIError(description: "\(url.path): cannot read the messages file", hint: "Give a JSON file: [{\"role\": \"user\", \"content\": \"…\"}].")
            }
            let value: JSONValue
            do { value = try JSONValue.parse(Array(data)) } catch {
                throw CLIError(description: "\(url.path): not valid JSON (\(error))", hint: "Give a JSON array: [{\"role\": \"user\", \"content\": \"…\"}].")
            }
            guard let items = value.array else {
                throw CLIError(description: "\(url.path): expected a JSON array of messages", hint: "Wrap the messages in [ … ].")
            }
            return try items.enumerated().map { i, item in
                guard let role = item["role"]?.string, let content = item["content"]?.string else {
                    throw CLIError(description: "\(url.path): message \(i) needs string fields \"role\" and \"content\"",
                                   hint: "Each message is {\"role\": \"system\"|\"user\"|\"assistant\", \"content\": \"…\"}.")
                }
                return ChatMessage(role: role, content: content)
            }
        }
    }
}
