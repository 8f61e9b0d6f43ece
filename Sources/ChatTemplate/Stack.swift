// Parsing and rendering recurse as deep as the template nests (bounded by ChatTemplateLimits), and a debug
// or sanitizer build spends kilobytes of stack per level. So both run on a thread of their own with a large
// stack: a hostile template ends in a limit error, never in a stack overflow, whatever thread the caller is
// on (a test runner's or a task's may have far less stack than the main thread's 8 MiB).
import Foundation

/// The stack of the thread that parses and renders templates (reserved address space; only the pages
/// used are committed).
let templateStackBytes = 512 << 20

/// The result a template thread hands back (written by that thread before it signals, read after the wait).
private final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, ChatTemplateError>?
    init() {}
}

/// Runs `body` on a fresh thread with a `templateStackBytes` stack and waits for it.
func onLargeStack<T: Sendable>(_ body: @escaping @Sendable () throws(ChatTemplateError) -> T) throws(ChatTemplateError) -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        box.result = Result { () throws(ChatTemplateError) -> T in try body() }
        done.signal()
    }
    thread.stackSize = templateStackBytes
    thread.start()
    done.wait()
    guard let result = box.result else { throw .limitExceeded(what: "the template thread did not finish", limit: 0, at: SourceLocation(line: 1, column: 1)) }
    return try result.get()
}
