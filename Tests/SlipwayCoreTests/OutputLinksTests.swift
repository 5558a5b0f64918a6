import Testing
@testable import SlipwayCore

/// Where a frontend output's symlinks lead, on their text alone.
@Suite struct OutputLinksTests {
    func resolve(_ link: String, _ target: String, _ links: [String: String] = [:]) -> OutputLinks.Resolution {
        OutputLinks.resolve(link: link, target: target, links: links.merging([link: target]) { $1 })
    }

    @Test func linksOutOfTheOutputAreOutside() {
        #expect(resolve("passwd.txt", "/etc/passwd") == .outside)
        #expect(resolve("root", "/") == .outside)
        #expect(resolve("a/b/up", "../../../other-app/secrets") == .outside)
        #expect(resolve("x", "..") == .outside)
        // Through another link inside that itself leads out.
        #expect(resolve("via", "door/passwd", ["door": "/etc"]) == .outside)
        #expect(resolve("via", "door/x", ["door": "../.."]) == .outside)
    }

    @Test func linksInsideResolveToTheirTarget() {
        #expect(resolve("latest.js", "app-3f2c1a9b.js") == .inside("app-3f2c1a9b.js"))
        #expect(resolve("a/b/c.css", "../../assets/c.css") == .inside("assets/c.css"))
        #expect(resolve("docs/index.html", "./../index.html") == .inside("index.html"))
        #expect(resolve("self", ".") == .inside(""))
        #expect(resolve("v", "cur/app.js", ["cur": "releases/v2"]) == .inside("releases/v2/app.js"))
    }

    @Test func loopsAreLoops() {
        #expect(OutputLinks.resolve(link: "a", target: "b", links: ["a": "b", "b": "a"]) == .loop)
    }
}
