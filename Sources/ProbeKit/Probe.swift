// Probe and ProbeSet: one knowledge-conflict item and a loaded file of them.
//
// Terms follow Goyal, Baek et al., "Context-Parametric Inversion" (ICLR 2025): a probe pairs a
// counterfactual context with a question; `answer` is what the context says, `memoryAnswer` is the
// memorized (parametric) fact the context contradicts.

/// One knowledge-conflict probe.
public struct Probe: Sendable, Equatable, Codable {
    /// Unique within its set: the file's `id` field, or `<file-stem>-<index>` (0-based item index).
    public var id: String
    /// The counterfactual context, verbatim (leading/trailing spaces are kept).
    public var context: String
    /// The question, verbatim.
    public var question: String
    /// The answer the context gives (trimmed of surrounding whitespace).
    public var answer: String
    /// The memorized (parametric) answer (trimmed); file field `memory_answer` or `parametric_answer`.
    public var memoryAnswer: String
    /// The annotated subject of the question, if the file gives one (trimmed; blank means absent).
    public var subject: String?
    /// Where the probe was read from; nil for probes made in code.
    public var location: ProbeLocation?

    public init(id: String, context: String, question: String, answer: String, memoryAnswer: String,
                subject: String? = nil, location: ProbeLocation? = nil) {
        self.id = id
        self.context = context
        self.question = question
        self.answer = answer
        self.memoryAnswer = memoryAnswer
        self.subject = subject
        self.location = location
    }

    enum CodingKeys: String, CodingKey {
        case id, context, question, answer, subject, location
        case memoryAnswer = "memory_answer"
        case parametricAnswer = "parametric_answer"
    }

    /// Decodes the file field names; the memorized answer may be `memory_answer` or `parametric_answer`.
    /// (Use `ProbeSetLoader` for files: it validates sizes and names the line at fault.)
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        context = try c.decode(String.self, forKey: .context)
        question = try c.decode(String.self, forKey: .question)
        answer = try c.decode(String.self, forKey: .answer)
        if let m = try c.decodeIfPresent(String.self, forKey: .memoryAnswer) {
            memoryAnswer = m
        } else {
            memoryAnswer = try c.decode(String.self, forKey: .parametricAnswer)
        }
        subject = try c.decodeIfPresent(String.self, forKey: .subject)
        location = try c.decodeIfPresent(ProbeLocation.self, forKey: .location)
    }

    /// Encodes with `memory_answer` (the canonical name).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(context, forKey: .context)
        try c.encode(question, forKey: .question)
        try c.encode(answer, forKey: .answer)
        try c.encode(memoryAnswer, forKey: .memoryAnswer)
        try c.encodeIfPresent(subject, forKey: .subject)
        try c.encodeIfPresent(location, forKey: .location)
    }
}


/// A loaded probe file.
public struct ProbeSet: Sendable, Equatable {
    /// How the file was laid out.
    public enum Format: String, Sendable, Equatable {
        case jsonArray = "json-array"
        case jsonLines = "jsonl"
    }

    /// The file's stem, e.g. `world_facts`; also the prefix of default ids.
    public let name: String
    /// The path the set was loaded from (or the name given to `parse`).
    public let path: String
    public let format: Format
    public let probes: [Probe]
    /// Size of the file in bytes.
    public let byteCount: Int

    public init(name: String, path: String, format: Format, probes: [Probe], byteCount: Int) {
        self.name = name
        self.path = path
        self.format = format
        self.probes = probes
        self.byteCount = byteCount
    }
}
