import Testing
@testable import ChatTemplate

@Suite("chat-template lexer and parser")
struct LexerParserTests {
    @Test("a plain template renders")
    func plain() throws {
        let t = try ChatTemplate(source: "hello {{ 'world' }}")
        #expect(try t.render(messages: [ChatMessage(role: "user", content: "x")], addGenerationPrompt: false) == "hello world")
    }
}
