// Experiments of `cpiscope intervene`: what the user asks for on the command line, expanded into the
// named interventions a run file records (one `intervention` coordinate entry each).
//
//   --ablate heads:all | heads:L.H,L.H | attn:all | attn:L,L | mlp:all | mlp:L,L   (--ablation zero|mean)
//   --knockout SPAN[@LAYERS]   LAYERS = all | A-B | L,L   (--knockout-window K: windows of K layers around each layer)
//   --transplant-from CHECKPOINT --components attn.qk,attn.ov,attn,mlp,norms --layers each|all|L,L
//   --patch-from CHECKPOINT --patch heads:each|layers:each --positions answer|all
import Models
import ProbeKit

/// How an ablation replaces what it removes.
public enum AblationMode: String, Sendable, CaseIterable {
    /// Zero (TransformerLens zero ablation).
    case zero
    /// The output averaged over the probe set at the same checkpoint, per position counted from the end of
    /// the prompt (positions past the prompt, in answers and generations, take the answer position's mean).
    case mean
}

/// Which activation an ablation or a patch acts on.
public enum ActivationSite: Sendable, Equatable {
    /// One head's `hook_z`.
    case head(layer: Int, head: Int)
    /// A layer's attention output (`hook_attn_out`).
    case attnOut(layer: Int)
    /// A layer's MLP output (`hook_mlp_out`).
    case mlpOut(layer: Int)
    /// A block's output (`hook_resid_post`).
    case residPost(layer: Int)

    var layer: Int {
        switch self {
        case let .head(l, _), let .attnOut(l), let .mlpOut(l), let .residPost(l): return l
        }
    }
}

/// Positions a patch copies.
public enum PatchPositions: String, Sendable, CaseIterable {
    /// The answer position (the last prompt token).
    case answer
    /// Every prompt position.
    case all
}

/// The query positions a knockout blocks (`--knockout-from`).
public enum KnockoutQueries: String, Sendable, CaseIterable {
    /// The answer position only (the last prompt token; Geva et al. 2023). The default: it measures the
    /// span's role in the prediction read at that position (M_C, the logit difference). Generated tokens
    /// still attend to the span.
    case answer
    /// The answer position and every generated token: the whole greedy answer is produced without
    /// reading the span (what `--generate` accuracy under a knockout should usually mean).
    case generation
    /// Every query position outside the span itself (prompt and generated tokens); the span's own tokens
    /// keep attending to each other, so no row loses all its keys.
    case all
}

/// One named intervention of a run.
public struct PlannedIntervention: Sendable, Equatable {
    public enum Action: Sendable, Equatable {
        case ablate(ActivationSite, AblationMode)
        /// Attention from the query positions `from` to the span's tokens blocked in these layers, all heads.
        case knockout(SpanKind, layers: [Int], from: KnockoutQueries)
        case transplant([TransplantComponent], layers: [Int], from: String)
        case patch(ActivationSite, PatchPositions, from: String)
    }

    public let action: Action
    /// Readable name, e.g. "ablate L3H5 zero", "knockout context L0-3", "transplant attn.qk L5 from checkpoint-50".
    public let name: String

    public var kind: String {
        switch action {
        case .ablate: return "ablate"
        case .knockout: return "knockout"
        case .transplant: return "transplant"
        case .patch: return "patch"
        }
    }

    /// The layer acted on (−1 when several).
    public var layer: Int {
        switch action {
        case let .ablate(site, _), let .patch(site, _, _): return site.layer
        case let .knockout(_, layers, _), let .transplant(_, layers, _): return layers.count == 1 ? layers[0] : -1
        }
    }

    /// Every layer acted on.
    public var layers: [Int] {
        switch action {
        case let .ablate(site, _), let .patch(site, _, _): return [site.layer]
        case let .knockout(_, layers, _), let .transplant(_, layers, _): return layers
        }
    }

    /// The head acted on (−1 when not a head).
    public var head: Int {
        switch action {
        case let .ablate(.head(_, h), _), let .patch(.head(_, h), _, _): return h
        default: return -1
        }
    }

    /// The component or hook ("z", "attn_out", "mlp_out", "resid_post", a transplant's components, a span).
    public var component: String {
        switch action {
        case let .ablate(site, _), let .patch(site, _, _): return Self.siteName(site)
        case let .knockout(span, _, _): return span.rawValue
        case let .transplant(components, _, _): return components.map(\.rawValue).joined(separator: "+")
        }
    }

    /// The source checkpoint of a transplant or patch ("" otherwise).
    public var source: String {
        switch action {
        case let .transplant(_, _, from), let .patch(_, _, from): return from
        default: return ""
        }
    }

    static func siteName(_ site: ActivationSite) -> String {
        switch site {
        case .head: return "z"
        case .attnOut: return "attn_out"
        case .mlpOut: return "mlp_out"
        case .residPost: return "resid_post"
        }
    }

    static func layerText(_ layers: [Int]) -> String {
        guard let first = layers.first, let last = layers.last else { return "" }
        if layers == Array(first...last), layers.count > 1 { return "L\(first)-\(last)" }
        return layers.map { "L\($0)" }.joined(separator: ",")
    }

    init(_ action: Action) {
        self.action = action
        switch action {
        case let .ablate(site, mode):
            switch site {
            case let .head(l, h): name = "ablate L\(l)H\(h) \(mode.rawValue)"
            default: name = "ablate \(Self.siteName(site)) L\(site.layer) \(mode.rawValue)"
            }
        case let .knockout(span, layers, from):
            // The default (from the answer position) keeps the names of files written before --knockout-from.
            name = "knockout \(span.rawValue) \(Self.layerText(layers))" + (from == .answer ? "" : " from \(from.rawValue)")
        case let .transplant(components, layers, from):
            name = "transplant \(components.map(\.rawValue).joined(separator: "+")) \(Self.layerText(layers)) from \(from)"
        case let .patch(site, positions, from):
            let at: String
            switch site {
            case let .head(l, h): at = "z L\(l)H\(h)"
            default: at = "\(Self.siteName(site)) L\(site.layer)"
            }
            name = "patch \(at) \(positions.rawValue) from \(from)"
        }
    }
}

/// A bad experiment on the command line, or one that does not fit the model.
public struct ExperimentError: Error, CustomStringConvertible, Sendable {
    public let option: String
    public let detail: String
    public var description: String { "\(option): \(detail)" }
}

/// What the user asked for, before it meets a model.
public struct ExperimentRequest: Sendable {
    public var ablate: [String] = []
    public var ablation: AblationMode = .zero
    public var knockout: [String] = []
    public var knockoutWindow: Int? = nil
    public var knockoutFrom: KnockoutQueries = .answer
    public var transplantFrom: String? = nil
    public var components: [String] = []
    public var transplantLayers: String = "each"
    public var patchFrom: String? = nil
    public var patch: [String] = []
    public var patchPositions: PatchPositions = .answer

    public init() {}

    public var isEmpty: Bool { ablate.isEmpty && knockout.isEmpty && transplantFrom == nil && patchFrom == nil }

    /// Expands every experiment into named interventions for a model of `layers` × `heads`.
    public func expand(layers L: Int, heads H: Int) throws(ExperimentError) -> [PlannedIntervention] {
        var out: [PlannedIntervention] = []
        func layerList(_ text: String, option: String) throws(ExperimentError) -> [Int] {
            if text == "all" { return Array(0..<L) }
            var list: [Int] = []
            for part in text.split(separator: ",") {
                let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
                guard (1...2).contains(bounds.count), let a = Int(bounds[0]), let b = Int(bounds.last!), a <= b else {
                    throw ExperimentError(option: option, detail: "'\(text)' is not a layer list (all, A-B or L,L,…)")
                }
                for l in a...b {
                    guard l >= 0, l < L else { throw ExperimentError(option: option, detail: "layer \(l) is outside the model's layers 0–\(L - 1)") }
                    list.append(l)
                }
            }
            return list
        }
        for spec in ablate {
            let parts = spec.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2 else {
                throw ExperimentError(option: "--ablate", detail: "'\(spec)' is not heads:all, heads:L.H,…, attn:all or mlp:all")
            }
            switch parts[0] {
            case "heads":
                if parts[1] == "all" {
                    for l in 0..<L { for h in 0..<H { out.append(PlannedIntervention(.ablate(.head(layer: l, head: h), ablation))) } }
                } else {
                    for item in parts[1].split(separator: ",") {
                        let lh = item.split(separator: ".")
                        guard lh.count == 2, let l = Int(lh[0]), let h = Int(lh[1]) else {
                            throw ExperimentError(option: "--ablate", detail: "'\(item)' is not LAYER.HEAD (e.g. 3.5)")
                        }
                        guard l >= 0, l < L else { throw ExperimentError(option: "--ablate", detail: "layer \(l) is outside the model's layers 0–\(L - 1)") }
                        guard h >= 0, h < H else { throw ExperimentError(option: "--ablate", detail: "head \(h) is outside the model's heads 0–\(H - 1)") }
                        out.append(PlannedIntervention(.ablate(.head(layer: l, head: h), ablation)))
                    }
                }
            case "attn":
                for l in try layerList(parts[1], option: "--ablate") { out.append(PlannedIntervention(.ablate(.attnOut(layer: l), ablation))) }
            case "mlp":
                for l in try layerList(parts[1], option: "--ablate") { out.append(PlannedIntervention(.ablate(.mlpOut(layer: l), ablation))) }
            default:
                throw ExperimentError(option: "--ablate", detail: "unknown target '\(parts[0])'; use heads, attn or mlp")
            }
        }
        for spec in knockout {
            let parts = spec.split(separator: "@", maxSplits: 1).map(String.init)
            guard let span = SpanKind(rawValue: parts[0]) else {
                throw ExperimentError(option: "--knockout", detail: "unknown span '\(parts[0])'; spans: \(SpanKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if let k = knockoutWindow {
                guard k >= 1, k <= L else { throw ExperimentError(option: "--knockout-window", detail: "\(k) is outside 1...\(L)") }
                // Centred on each layer; windows at the edges are cut short, so each centre has its own.
                for center in 0..<L {
                    let lo = max(0, center - (k - 1) / 2), hi = min(L - 1, center + k / 2)
                    out.append(PlannedIntervention(.knockout(span, layers: Array(lo...hi), from: knockoutFrom)))
                }
            } else {
                out.append(PlannedIntervention(.knockout(span, layers: try layerList(parts.count == 2 ? parts[1] : "all", option: "--knockout"), from: knockoutFrom)))
            }
        }
        if let from = transplantFrom {
            guard !components.isEmpty else {
                throw ExperimentError(option: "--components", detail: "--transplant-from needs --components (attn.qk, attn.ov, attn, mlp, norms)")
            }
            let parsed = try components.map { name throws(ExperimentError) -> TransplantComponent in
                guard let c = TransplantComponent(rawValue: name) else {
                    throw ExperimentError(option: "--components", detail: "unknown component '\(name)'; use \(TransplantComponent.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return c
            }
            for c in parsed {
                switch transplantLayers {
                case "each": for l in 0..<L { out.append(PlannedIntervention(.transplant([c], layers: [l], from: from))) }
                case "all": out.append(PlannedIntervention(.transplant([c], layers: Array(0..<L), from: from)))
                default:
                    for l in try layerList(transplantLayers, option: "--layers") { out.append(PlannedIntervention(.transplant([c], layers: [l], from: from))) }
                }
            }
        }
        if let from = patchFrom {
            guard !patch.isEmpty else { throw ExperimentError(option: "--patch", detail: "--patch-from needs --patch heads:each or layers:each") }
            for what in patch {
                switch what {
                case "heads:each":
                    for l in 0..<L { for h in 0..<H { out.append(PlannedIntervention(.patch(.head(layer: l, head: h), patchPositions, from: from))) } }
                case "layers:each":
                    for l in 0..<L { out.append(PlannedIntervention(.patch(.residPost(layer: l), patchPositions, from: from))) }
                default:
                    throw ExperimentError(option: "--patch", detail: "'\(what)' is not heads:each or layers:each")
                }
            }
        }
        if Set(out.map(\.name)).count != out.count {
            throw ExperimentError(option: "experiments", detail: "the same intervention is asked for twice")
        }
        return out
    }
}
