// `--precision`, shared by probe, intervene and slurm (through ProbeRunOptions), criticality, logits and bench.
import ArgumentParser
import Checkpoints
import Foundation
import Models
import TensorCore

extension Precision: ExpressibleByArgument {}

struct PrecisionOption: ParsableArguments {
    @Option(help: ArgumentHelp("Precision of the weight products: fp32 or bf16 (default: bf16 for BF16 checkpoints, else fp32).",
                               discussion: "bf16 rounds activations to bfloat16 and runs oneDNN bf16 matrix products with float32 accumulation, reading BF16 weights where they lie; norms, softmax, attention and the residual stream stay float32. docs/precision.md has the deviations of each mode from transformers."))
    var precision: Precision?

    func validate() throws {
        if precision == .bf16, !bf16Available {
            throw ValidationError("--precision bf16 needs oneDNN's bf16 matmul, which could not be made on this machine; use --precision fp32")
        }
    }

    /// The precision asked for, else the default of the checkpoint at `path` (an adapter's base).
    func resolve(for path: URL, base: URL? = nil) throws -> Precision {
        try precision ?? CheckpointLoader(base: base, hashContents: false).defaultPrecision(for: path)
    }
}
