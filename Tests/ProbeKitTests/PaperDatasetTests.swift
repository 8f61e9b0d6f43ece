// The paper's released probe files (../shared/datasets/context-parametric-inversion): all 1064 items
// load as published, and every span is either located (checked by slicing) or flagged with a reason.
// Skipped when ../shared is absent (users' machines).

import Foundation
import Testing
@testable import ProbeKit

@Suite("Paper datasets", .enabled(if: Paths.paperPresent, "needs ../shared/datasets/context-parametric-inversion"))
struct PaperDatasetTests {
    @Test("All three files load: 313 + 196 + 555 = 1064 items, both memorized-answer names")
    func loadAll() throws {
        let expected = ["world_facts.json": (313, ProbeSet.Format.jsonArray),
                        "country_capitals_only.json": (196, .jsonArray),
                        "famous_biographies.jsonl": (555, .jsonLines)]
        var total = 0
        for name in Paths.paperFiles {
            let set = try ProbeSetLoader.load(url: Paths.paper.appendingPathComponent(name))
            let (count, format) = try #require(expected[name])
            #expect(set.probes.count == count, "\(name)")
            #expect(set.format == format, "\(name)")
            #expect(set.probes.allSatisfy { !$0.memoryAnswer.isEmpty && $0.subject == nil })
            #expect(set.probes.first?.id == "\(set.name)-0")
            total += set.probes.count
        }
        #expect(total == 1064)
        let world = try ProbeSetLoader.load(url: Paths.paper.appendingPathComponent("world_facts.json"))
        #expect(world.probes[1].answer == "Durrës")
        let bios = try ProbeSetLoader.load(url: Paths.paper.appendingPathComponent("famous_biographies.jsonl"))
        #expect(bios.probes[0].context.hasPrefix("  Enrico Fermi"))     // leading spaces kept
        #expect(bios.probes[0].memoryAnswer == "Leonardo da Vinci")    // from parametric_answer
    }

    @Test("Every probe builds under every template; spans slice correctly; counts of located / missing printed")
    func spansOnPaperFiles() throws {
        var report: [String] = []
        for name in Paths.paperFiles {
            let set = try ProbeSetLoader.load(url: Paths.paper.appendingPathComponent(name))
            var subjectInContext = 0, subjectQuestionOnly = 0, subjectMissing = 0
            var byRule: [String: Int] = [:]
            var answerFound = 0, memoryFound = 0
            var missingReasons: [String: Int] = [:]
            for p in set.probes {
                for template in [PromptTemplate.plain, .alpaca, .tulu] {
                    let b = try PromptBuilder.build(p, template: template)
                    PromptBuilderTests.checkSpans(b, p)
                    // Located subject spans fold-equal one of the recorded phrases.
                    if case let .located(_, phrases) = b.subjectSource {
                        let keys = Set(phrases.map { TextMatch.folded(TextMatch.scalars($0)) })
                        for r in b.spans[.subject]! {
                            #expect(keys.contains(TextMatch.folded(TextMatch.scalars(b.text(of: r)))), "\(p.id)")
                        }
                    }
                }
                let b = try PromptBuilder.build(p, template: .plain)
                let ctx = b.spans[.context]![0]
                switch b.subjectSource {
                case let .located(rule, _):
                    byRule[rule, default: 0] += 1
                    if b.spans[.subject]!.contains(where: { ctx.contains($0.lowerBound) }) { subjectInContext += 1 }
                    else { subjectQuestionOnly += 1 }
                case let .missing(reason):
                    subjectMissing += 1
                    missingReasons[reason, default: 0] += 1
                    #expect(b.spans[.subject] == [])
                case .annotated:
                    Issue.record("\(p.id): the paper's files annotate no subject")
                }
                if b.spanStatus[.contextAnswer] == .found { answerFound += 1 }
                else { report.append("  \(p.id): \(b.spanStatus[.contextAnswer]!.reason!)") }
                if b.spanStatus[.memoryMention] == .found { memoryFound += 1 }
            }
            let n = set.probes.count
            #expect(subjectInContext + subjectQuestionOnly + subjectMissing == n)
            print("""
            \(name): \(n) probes; subject located \(subjectInContext + subjectQuestionOnly) \
            (in context \(subjectInContext), question only \(subjectQuestionOnly)), missing \(subjectMissing); \
            context answer found \(answerFound), missing \(n - answerFound); memory mention in context \(memoryFound)
              subject rules used: \(byRule.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            """)
            for (reason, count) in missingReasons { print("  subject missing ×\(count): \(reason)") }
        }
        if !report.isEmpty { print("context answer not in context:\n" + report.joined(separator: "\n")) }
    }
}
