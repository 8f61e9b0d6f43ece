// Exact string keys.
//
// Swift `String` equality and hashing follow canonical equivalence: "é" (U+00E9) == "e\u{301}".
// Tokenizers compare token strings byte for byte (Rust `String`), and vocabularies may contain
// both forms with different ids, so every table keyed by token text uses `ExactString`.

/// A string compared and hashed by its exact UTF-8 bytes.
struct ExactString: Hashable, Sendable {
    let string: String

    init(_ string: String) { self.string = string }

    static func == (a: ExactString, b: ExactString) -> Bool {
        a.string.utf8.elementsEqual(b.string.utf8)
    }

    func hash(into hasher: inout Hasher) {
        let done: Void? = string.utf8.withContiguousStorageIfAvailable { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        if done == nil {
            Array(string.utf8).withUnsafeBytes { hasher.combine(bytes: $0) }
        }
    }
}

extension String {
    var exact: ExactString { ExactString(self) }
}
