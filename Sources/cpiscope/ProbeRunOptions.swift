// Options shared by the commands that run a probe set through a trajectory (`probe`, `intervene`):
// the trajectory, the probes and their prompts, the output file, generation, threads and grouping.
import ArgumentParser
import Checkpoints
import Foundation
import ProbeKit
import ProbeRun
import TrajectoryJob
import TensorCore

struct ProbeRunOptions: ParsableArguments {
    @OptionGroup var run: TrajectoryJobOptions

    @Option(help: "Probe set: JSON array or JSONL with context, question, answer, memory_answer|parametric_answer[, subject, id].")
    var probes: String = "Probes/capitals.jsonl"

    @Option(help: ArgumentHelp("Prompt template: plain, alpaca, tulu, or chat (the checkpoint's own chat template).",
                               discussion: "chat renders the chat template beside the tokenizer (chat_template.jinja, or tokenizer_config.json's chat_template) as transformers' apply_chat_template does, with an optional --system message and a user message holding the context and question (\"Background: {context} Question: {question}\", or --user-template), and the generation prompt. docs/probes-and-templates.md, \"Chat templates\"."))
    var template: String = "plain"

    @Option(help: "With --template chat: a system message.")
    var system: String?

    @Option(help: "With --template chat: a file with the user message's text, with {context} and {question} (default: \"Background: {context} Question: {question}\").")
    var userTemplate: String?

    @Option(help: "With --template chat: which of the folder's named chat templates (default: \"default\").")
    var chatTemplateName: String?

    @Flag(help: "Add \"Answer the question based on the input context only.\" to the template.")
    var contextOnly = false

    @Option(help: "A template file with {context} and {question} placeholders (instead of --template).")
    var templateFile: String?

    @Option(help: ArgumentHelp("Greedy generation: maximum new tokens (default: the probe set's longest answer + 12, at least 16).",
                               discussion: "Room for a leading newline and a sentence around the answer, as instruction-tuned models write it."))
    var maxNewTokens: Int?

    @Option(help: ArgumentHelp("Greedy generation stops at this string (repeatable; default: newline).",
                               discussion: "A stop string counts only after the first visible (non-whitespace) character, so a response that opens with a newline is not cut empty; generation also stops at every EOS id of config.json, generation_config.json and the tokenizer."))
    var stop: [String] = []

    @Option(help: "Refuse prompts longer than this many tokens.")
    var maxTokens: Int?

    @Option(help: ArgumentHelp("How a generation is scored for an answer: paper, first-sentence or no-echo (default: paper).",
                               discussion: "paper: the answer anywhere in the generation (Goyal, Baek et al.), so an echo of the context counts; first-sentence: in its first sentence; no-echo: outside every run of 6+ words copied from the context. docs/probes-and-templates.md has the exact rules.",
                               valueName: "rule"))
    var correctness: CorrectnessRule = .paper

    @Option(help: ArgumentHelp("Probes measured together (default 32): their logit lens, answer scoring and generation share each read of the weights.",
                               discussion: "A group also closes before its KV caches would pass --batch-memory. Larger groups are faster and use more memory; results may differ in the last bits between group sizes (docs/cluster.md), so --resume and merge require the file's."))
    var batch: Int = 32

    @Option(help: ArgumentHelp("Memory for one group's KV caches, in MiB (default: from this machine's RAM, or the process's cgroup memory limit where lower (a Slurm task's --mem): a quarter of what the weights leave, at most half of what is free beyond them, a power of two from 64 MiB to 4 GiB; recorded in the run file).", valueName: "MiB"))
    var batchMemory: Int?

    @Flag(help: "Print how the probes are grouped: the group size and the KV-cache budget, and where it comes from.")
    var verbose = false


    func validate() throws {
        if templateFile != nil && template != "plain" { throw ValidationError("give either --template or --template-file") }
        if template != "chat" && PromptTemplate.builtin(template) == nil {
            throw ValidationError("unknown --template '\(template)'; choose one of \((PromptTemplate.builtinNames + ["chat"]).joined(separator: ", "))")
        }
        if template != "chat" && (system != nil || userTemplate != nil || chatTemplateName != nil) {
            throw ValidationError("--system, --user-template and --chat-template-name need --template chat")
        }
        if let m = maxNewTokens, m < 0 { throw ValidationError("--max-new-tokens must be ≥ 0") }
        if batch < 1 { throw ValidationError("--batch must be ≥ 1") }
        if let m = batchMemory, m < 1 { throw ValidationError("--batch-memory must be ≥ 1 (MiB)") }
        if let m = maxTokens, m < 1 { throw ValidationError("--max-tokens must be ≥ 1") }
    }

    /// The output path (-o; default Notebooks-out/run.h5).
    var output: String { run.outputPath(default: "Notebooks-out/run.h5") }
    var quiet: Bool { run.quiet }

    /// The job's settings, from the options.
    func makeSpec() throws -> ProbeJobSpec {
        let (refs, root) = try run.discover()
        var tmpl: PromptTemplate
        if let f = templateFile {
            tmpl = try PromptTemplate.load(url: URL(fileURLWithPath: f))
        } else if template == "chat" {
            let folder = try run.chatTemplateFolder(refs: refs, root: root)
            tmpl = try ChatPrompt.template(folder: folder, templateName: chatTemplateName, system: system,
                                           userTemplate: userTemplate.map { URL(fileURLWithPath: $0) }, contextOnly: contextOnly)
        } else {
            tmpl = PromptTemplate.builtin(template, contextOnly: contextOnly)!
        }
        var spec = ProbeJobSpec(checkpoints: refs, trajectoryRoot: root, probeFile: URL(fileURLWithPath: probes),
                                template: tmpl, output: URL(fileURLWithPath: output))
        spec.job = run.settings(refs: refs, root: root, output: output)
        if let maxNewTokens { spec.options.maxNewTokens = maxNewTokens } else { spec.automaticMaxNewTokens = true }
        spec.probeGroupSize = batch
        spec.batchCacheBytes = batchMemory.map { $0 << 20 }
        if !stop.isEmpty { spec.options.stopStrings = stop }
        spec.options.maxPromptTokens = maxTokens
        spec.options.correctness = correctness
        return spec
    }
}

extension JobShard.Axis: ExpressibleByArgument {}
extension CorrectnessRule: ExpressibleByArgument {}

/// The checkpoints named by a command's TRAJECTORY arguments (checkpoint folders, folders of checkpoint-N,
/// or several), narrowed by `--checkpoints`; and the trajectory folder (the tokenizer fallback) when one
/// argument named a folder of checkpoints.
func discoverCheckpoints(_ paths: [String], select: String?) throws -> (refs: [CheckpointRef], root: URL?) {
    var refs: [CheckpointRef] = []
    var root: URL? = nil
    for path in paths {
        let url = URL(fileURLWithPath: path)
        let found = try Trajectory.discover(at: url)
        if paths.count == 1, found.count > 1 || found.first?.path.standardizedFileURL != url.standardizedFileURL { root = url }
        refs += found
    }
    if let select { refs = try Trajectory.select(refs, spec: select) }
    return (refs, root)
}
