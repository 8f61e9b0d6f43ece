// The `cpiscope` executable: a thin command layer over the library modules.
// Only this target imports ArgumentParser.
import ArgumentParser
import Foundation
import TensorCore

@main
struct CPIScope: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cpiscope",
        abstract: "Look inside a model across an instruction-finetuning trajectory.",
        discussion: """
        cpiscope loads Hugging Face checkpoints (GPT-2, GPT-NeoX/Pythia, Llama, Mistral, Qwen2, OLMo-2, \
        Qwen3, Gemma-2, Phi-3; safetensors or pytorch_model.bin; PEFT LoRA adapters), runs \
        knowledge-conflict probes through an instrumented CPU forward pass, and writes attention mass, \
        direct logit attribution, logit-lens scores and generations to HDF5 for analysis; \
        `intervene` runs causal experiments (ablation, knockout, transplant, patching) across checkpoints; \
        `criticality` scores instruction data by how much each response needs its context (the paper's §3.4 filter).

        Start with:   cpiscope inspect PATH      (what is in a checkpoint or trajectory)
                      cpiscope logits PATH --ids 1,2,3
                      cpiscope tokenize PATH --text "Paris is"
        """,
        version: CPIScopeVersion.string,
        subcommands: [DemoCommand.self, ProbeCommand.self, InterveneCommand.self, AttributeCommand.self, CriticalityCommand.self, DiffCommand.self, ReportCommand.self, InspectCommand.self, MergeCommand.self, SlurmCommand.self, LogitsCommand.self, TokenizeCommand.self, TemplateCommand.self, BenchCommand.self]
    )
}

extension CPIScope {
    static func main() {
        restartWithBLASKernelsIfNeeded()
        runMain()
    }

    /// OpenBLAS 0.3.21 falls back to its SSE3 "Prescott" kernels on CPUs it cannot name (VMs with a masked
    /// model, newer server parts), which makes every float32 product 4-5× slower than the hardware allows
    /// (BENCHMARKS.md, issues 15 and 24). When the CPU has AVX-512 (CPUID), cpiscope restarts itself once with
    /// OPENBLAS_CORETYPE=SkylakeX, which OpenBLAS reads only at load time. Setting OPENBLAS_CORETYPE
    /// yourself, or CPISCOPE_KEEP_BLAS_CORE=1, keeps OpenBLAS's own choice; `cpiscope bench` prints the
    /// kernel family in use.
    static func restartWithBLASKernelsIfNeeded() {
        let env = ProcessInfo.processInfo.environment
        guard let core = blasCoreTypeOverride(environment: env, openBLASCore: blasCoreName,
                                              hasSkylakeXInstructions: cpuHasSkylakeXInstructions) else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        setenv("CPISCOPE_KEEP_BLAS_CORE", "1", 1)  // never twice
        let args = CommandLine.unsafeArgv
        execv("/proc/self/exe", args)
        // execv returns only on failure: go on with the kernels OpenBLAS chose.
    }
}

enum CPIScopeVersion {
    static let string = "0.1.0"
}
