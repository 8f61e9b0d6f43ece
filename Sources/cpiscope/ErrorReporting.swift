// How the CLI reports failures: one line naming the file/field at fault, one line with a hint,
// and a non-zero exit status. Every module's error enum conforms to `HintedError` here.
import ArgumentParser
import Analysis
import ChatTemplate
import Checkpoints
import Foundation
import Models
import ProbeRun
import TrajectoryJob
import ProbeKit
import HDF5Store
import Instrumentation
import Reports
import Tokenization

/// An error that knows how to tell the user what to do next.
protocol HintedError: Error, CustomStringConvertible {
    var hint: String { get }
}

extension ConfigError: HintedError {}
extension CheckpointError: HintedError {}
extension ModelError: HintedError {}
extension ProbeRunError: HintedError {}
extension TrajectoryJobError: HintedError {}
extension TunedLensError: HintedError {}
extension ProbeKitError: HintedError {}
extension HDF5Error: HintedError {}
extension TokenizationError: HintedError {}
extension AnalysisError: HintedError {}
extension ReportError: HintedError {}
extension InterventionJobError: HintedError {}
extension AttributionJobError: HintedError {}
extension RunMergeError: HintedError {}
extension InterventionError: HintedError {
    var hint: String { "Layers and heads count from 0; see cpiscope intervene --help." }
}
extension ChatTemplateError: HintedError {
    var hint: String {
        switch self {
        case .raised: return "The model's own chat template refused this conversation (the message above is the template's): change the conversation (--system, the roles), or pick another template with --chat-template-name."
        case .noTemplate: return "Instruct checkpoints carry chat_template.jinja or a chat_template field in tokenizer_config.json; point --tokenizer at a folder that has one, or use --template plain|alpaca|tulu."
        case .templateNotFound: return "Pass one of the listed names with --chat-template-name."
        case .syntax, .unsupported: return "cpiscope renders the Jinja subset of docs/probes-and-templates.md (\"Chat templates\"); the construct above is outside it. Please report the template."
        case .runtime, .limitExceeded: return "The template failed while rendering this conversation; `cpiscope template render DIR --messages F.json` shows the same error on a conversation of your own."
        case .invalidFile: return "Fix or replace the file named above."
        case .emptyConversation: return "Give at least one message."
        }
    }
}
extension TransplantError: HintedError {
    var hint: String { "Transplants need another checkpoint of the same model, and layers inside it." }
}

/// An error raised by the command layer itself.
struct CLIError: HintedError {
    let description: String
    let hint: String
}

enum Terminal {
    /// Writes to stderr without buffering, after whatever stdout holds (`flushOutput`).
    static func error(_ text: String) {
        flushOutput()
        FileHandle.standardError.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
    }

    /// Flushes stdout's buffer (every C output stream: fflush(NULL)) before anything goes to stderr, so
    /// that when both go to one log (`cpiscope demo 2>&1 | tee log`) tables and progress lines come out
    /// whole and in the order they were written, never interleaved mid-line.
    static func flushOutput() { fflush(nil) }

    static var stderrIsTTY: Bool { isatty(STDERR_FILENO) != 0 }
}

extension CPIScope {
    /// Runs the command line; library errors print as `error: …` + `hint: …` and exit with status 1.
    static func runMain() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let e as HintedError {
            Terminal.error("error: \(e.description)\nhint: \(e.hint)")
            Foundation.exit(1)
        } catch {
            exit(withError: error)
        }
    }
}
