// The probe job's settings, sorted by whether they change what the run file stores. One list, read by
// `--resume` (which refuses a file written with other values, naming the option) and by the test that
// changes each of them on a resume (Tests/CLITests/ResumeIntegrityTests.swift); that test also fails
// when `cpiscope probe` gains an option that is in neither list, so a new option cannot be forgotten.
// Merge compares every root attribute but the per-process ones, so it refuses the same mixes.
import HDF5Store

public enum ProbeSettings {
    /// An option, and where the run file records its effect.
    public struct Setting: Sendable, Equatable {
        /// The command-line option (`--max-new-tokens`).
        public let option: String
        /// The root attribute that records it, or the layout it shapes (`checkpoint`, `dump_layer`,
        /// `dump_probe`, checked against the file's coordinates).
        public let attribute: String
    }

    /// Options whose value changes a stored number, string or shape. A resumed run must use the file's.
    public static let resultChanging: [Setting] = [
        Setting(option: "--probes", attribute: RunSchema.Attribute.probeFileSHA256),
        Setting(option: "--checkpoints", attribute: RunSchema.Dim.checkpoint),
        Setting(option: "--template", attribute: RunSchema.Attribute.templateText),
        Setting(option: "--context-only", attribute: RunSchema.Attribute.templateText),
        Setting(option: "--template-file", attribute: RunSchema.Attribute.templateText),
        Setting(option: "--system", attribute: RunSchema.Attribute.templateText),
        Setting(option: "--user-template", attribute: RunSchema.Attribute.templateText),
        Setting(option: "--chat-template-name", attribute: RunSchema.Attribute.templateText),
        Setting(option: "--tokenizer", attribute: "tokenizer_sha256"),
        Setting(option: "--base", attribute: "base_model_path"),
        Setting(option: "--max-new-tokens", attribute: "max_new_tokens"),
        Setting(option: "--stop", attribute: "stop_strings"),
        Setting(option: "--max-tokens", attribute: "max_prompt_tokens"),
        Setting(option: "--precision", attribute: RunSchema.Attribute.precision),
        Setting(option: "--batch", attribute: RunSchema.Attribute.probeGroupSize),
        Setting(option: "--batch-memory", attribute: RunSchema.Attribute.probeGroupCacheBytes),
        Setting(option: "--dump", attribute: RunSchema.Dim.dumpLayer),
        Setting(option: "--dump-probes", attribute: RunSchema.Dim.dumpProbe),
        Setting(option: "--lens", attribute: "tuned_lens_path"),
        Setting(option: "--correctness", attribute: "correctness"),
    ]

    /// Options that change nothing stored: where the output goes, what is printed, how the work is spread
    /// (threads and shards give bit-identical data: docs/cluster.md), and the resume/overwrite switches.
    public static let neutral: Set<String> = [
        "--output", "--force", "--resume", "--quiet", "--threads", "--shard", "--shard-by", "--version", "--help",
        // Both readouts are always stored; this picks the summary table's M_C column.
        "--readout",
        // Prints the probe groups' budget (which is recorded, and checked through --batch-memory's attribute).
        "--verbose",
    ]

    /// The root attributes a resume compares (the layout-shaped settings are compared by `RunWriter`).
    static var attributes: [String] {
        var seen = Set<String>(), out: [String] = []
        for s in resultChanging where !layoutNames.contains(s.attribute) && seen.insert(s.attribute).inserted { out.append(s.attribute) }
        return out
    }

    static let layoutNames: Set<String> = [RunSchema.Dim.checkpoint, RunSchema.Dim.dumpLayer, RunSchema.Dim.dumpProbe]

    /// The options that set `attribute`, for an error message ("--template, --context-only or --template-file").
    static func options(for attribute: String) -> String {
        let names = resultChanging.filter { $0.attribute == attribute }.map(\.option)
        switch names.count {
        case 0: return attribute
        case 1: return names[0]
        default: return names.dropLast().joined(separator: ", ") + " or " + names.last!
        }
    }
}
