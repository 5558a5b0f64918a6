import Testing
import SlipwayCore

@Suite struct TerminalTextTests {
    @Test func plainTextIsUnchanged() {
        #expect(TerminalText.escaped("ready: serving 12 req/s\tok — ünïcode") == "ready: serving 12 req/s\tok — ünïcode")
    }

    @Test func escapeSequencesAreShownNotObeyed() {
        // Retitle the terminal, then clear it: what an app's STATUS= tried.
        let hostile = "\u{1B}]0;pwned\u{07}\u{1B}[2Jready"
        #expect(TerminalText.escaped(hostile) == "\\e]0;pwned\\a\\e[2Jready")
        #expect(TerminalText.escaped("a\rb\u{08}c\u{00}d\u{7F}") == "a\\rb\\bc\\x00d\\x7f")
        #expect(TerminalText.escaped("\u{9B}2J") == "\\u{9b}2J")
    }

    @Test func newlinesAreKeptOnlyWhenAsked() {
        #expect(TerminalText.escaped("one\ntwo") == "one\\ntwo")
        #expect(TerminalText.escaped("one\ntwo\u{1B}[1m", keepNewlines: true) == "one\ntwo\\e[1m")
    }
}
