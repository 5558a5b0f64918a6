import Testing
@testable import SlipwayCore

@Suite struct YAMLParserTests {
    func parse(_ text: String) throws(YAMLError) -> YAMLNode { try YAMLParser().parse(text) }

    func error(_ text: String, limits: YAMLParser.Limits = .init()) -> YAMLError? {
        do {
            _ = try YAMLParser(limits: limits).parse(text)
            return nil
        } catch {
            return error
        }
    }

    @Test func nodesKeepOneBasedLinesAndColumns() throws {
        let root = try parse("app: demo\nsource:\n  repo: /x\n  ref: main\nlist: [a, b]\n")
        guard case .mapping(let pairs) = root.content else { Issue.record("not a mapping"); return }
        #expect(pairs.map(\.key) == ["app", "source", "list"])
        #expect(pairs[0].keyMark == SourceMark(line: 1, column: 1))
        #expect(pairs[0].value.mark == SourceMark(line: 1, column: 6))
        guard case .mapping(let source) = pairs[1].value.content else { Issue.record("source not a mapping"); return }
        #expect(source[1].keyMark == SourceMark(line: 4, column: 3))
        guard case .sequence(let items) = pairs[2].value.content else { Issue.record("not a list"); return }
        #expect(items[1].mark == SourceMark(line: 5, column: 11))
    }

    @Test func quotedScalarsAreNotPlain() throws {
        let root = try parse("a: \"5\"\nb: 5\nc: ~\nd:\n")
        guard case .mapping(let pairs) = root.content else { return }
        #expect(pairs[0].value.content == .scalar("5", plain: false))
        #expect(pairs[1].value.content == .scalar("5", plain: true))
        #expect(pairs[2].value.isNull)
        #expect(pairs[3].value.isNull)
    }

    @Test func aliasesAreRefusedSoAliasBombsCannotExpand() {
        let bomb = """
        a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]
        b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
        c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
        """
        let failure = error(bomb)
        #expect(failure?.message.contains("aliases") == true)
        #expect(failure?.mark == SourceMark(line: 2, column: 8))
    }

    @Test func deepNestingIsRefusedAtTheLimit() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        let failure = error(deep)
        #expect(failure?.message.contains("nesting is deeper than 64") == true)
        #expect(failure?.mark.column == 65)
    }

    @Test func hugeScalarsAndHugeInputsAreRefused() {
        let big = "app: " + String(repeating: "x", count: 70_000)
        #expect(error(big)?.message.contains("at most 65536") == true)
        let huge = String(repeating: "# comment\n", count: 200_000)
        #expect(error(huge)?.message.contains("at most 1048576") == true)
    }

    @Test func tooManyNodesAreRefused() {
        var limits = YAMLParser.Limits()
        limits.maxNodes = 100
        let many = "[" + (0..<200).map(String.init).joined(separator: ",") + "]"
        #expect(error(many, limits: limits)?.message.contains("more than 100 values") == true)
    }

    @Test func duplicateKeysTagsMergeKeysAndSecondDocumentsAreErrors() {
        #expect(error("a: 1\nb: 2\na: 3\n")?.message == "duplicate key 'a'; each key may appear once in a mapping")
        #expect(error("a: 1\nb: 2\na: 3\n")?.mark == SourceMark(line: 3, column: 1))
        #expect(error("a: !!binary aGVsbG8=\n")?.message.contains("tags") == true)
        #expect(error("base: {x: 1}\nuse:\n  <<: {x: 2}\n")?.message.contains("merge keys") == true)
        #expect(error("a: 1\n---\nb: 2\n")?.message.contains("second YAML document") == true)
        #expect(error("[a, b]: 1\n")?.message.contains("mapping key must be a plain name") == true)
    }

    @Test func syntaxErrorsCarryLibyamlsPosition() {
        let failure = error("app: demo\nsource:\n  repo: [unclosed\n  ref: main\n")
        #expect(failure != nil)
        #expect((failure?.mark.line ?? 0) >= 3)
        let tab = error("a:\n\tb: 1\n")
        #expect(tab?.mark.line == 2)
    }

    @Test func emptyDocumentsAreErrors() {
        #expect(error("")?.message.contains("empty") == true)
        #expect(error("# only a comment\n")?.message.contains("empty") == true)
        #expect(error("~\n")?.message.contains("empty") == true)
    }

    @Test func invalidUTF8IsAnErrorNotACrash() {
        let text = String(decoding: [0x61, 0x3A, 0x20, 0xFF, 0xFE, 0x0A], as: UTF8.self)
        // Swift replaces invalid bytes with U+FFFD; the parser must simply accept or refuse, never crash.
        _ = try? YAMLParser().parse(text)
    }

    @Test func aLeadingByteOrderMarkIsAccepted() throws {
        let root = try parse("\u{FEFF}app: demo\n")
        guard case .mapping(let pairs) = root.content else { Issue.record("not a mapping"); return }
        #expect(pairs.map(\.key) == ["app"])
        #expect(pairs[0].keyMark == SourceMark(line: 1, column: 1))
    }

    /// A copied frame per key once made this quadratic (78 s for 60,000 keys); it must stay linear.
    @Test func largeMappingsParseInLinearTime() throws {
        func mapping(_ keys: Int) -> String {
            (0..<keys).map { "k\($0): v\n" }.joined()
        }
        let clock = ContinuousClock()
        let small = try clock.measure { _ = try parse(mapping(5_000)) }
        let large = try clock.measure { _ = try parse(mapping(49_000)) }
        // Ten times the keys: linear is ~10x; the quadratic builder was ~100x.
        #expect(large < small * 30 + .milliseconds(200), "5,000 keys: \(small), 49,000 keys: \(large)")
        #expect(large < .seconds(3))
    }

    /// The hostile manifests of the report: refused or decoded fast, with a bounded report.
    @Test func hugeManifestsAreRefusedQuicklyWithABoundedReport() {
        let clock = ContinuousClock()
        let sixty = "app: demo\n" + (0..<60_000).map { "k\($0): v\n" }.joined()
        var refusal: Diagnostics?
        let refused = clock.measure {
            if case .failure(let diagnostics) = ManifestDecoder.decode(sixty, file: "m.yaml") { refusal = diagnostics }
        }
        #expect(refusal?.items.first?.message.contains("more than 100000 values") == true)
        #expect(refused < .seconds(1), "a 60,000-key manifest took \(refused) to refuse")

        // Just under the node limit: every key is unknown, and the report stops at 100 lines.
        let many = "app: demo\n" + (0..<49_000).map { "k\($0): v\n" }.joined()
        var report: Diagnostics?
        let decoded = clock.measure {
            if case .failure(let diagnostics) = ManifestDecoder.decode(many, file: "m.yaml") { report = diagnostics }
        }
        #expect(report?.items.count == 101)
        #expect(report?.items.last?.message.contains("more problems in this file") == true)
        #expect(decoded < .seconds(2), "49,000 unknown keys took \(decoded)")
    }
}
