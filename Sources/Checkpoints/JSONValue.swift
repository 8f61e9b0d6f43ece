// Checkpoints reads its JSON (safetensors headers, config.json, shard indexes, trainer_state.json,
// adapter_config.json) with the one strict reader of the StrictJSON module.
import StrictJSON

/// The StrictJSON value type, named here so that modules above Checkpoints (Models) can use it
/// through `import Checkpoints`.
public typealias JSONValue = StrictJSON.JSONValue

extension JSONValue {
    /// Parses bytes strictly (no duplicate keys, bounded nesting); nil when they are not valid JSON.
    public static func parseOrNil(_ bytes: [UInt8]) -> JSONValue? { try? parse(bytes) }
}
