import Foundation
import CGit2

/// A libgit2 failure, with libgit2's own message and what Slipway was doing.
public struct GitError: Error, Sendable, CustomStringConvertible {
    public var operation: String
    public var message: String
    public var code: Int32

    public var description: String { "\(operation): \(message)" }

    /// True for "not found" (GIT_ENOTFOUND), which callers often turn into a friendlier message.
    public var isNotFound: Bool { code == GIT_ENOTFOUND.rawValue }

    static func last(_ operation: String, code: Int32) -> GitError {
        let message = git_error_last().flatMap { $0.pointee.message.map { String(cString: $0) } } ?? "libgit2 error \(code)"
        return GitError(operation: operation, message: message.trimmingCharacters(in: .whitespacesAndNewlines), code: code)
    }

    /// Runs a libgit2 call and throws its error when it returns a negative code.
    @discardableResult
    static func check(_ operation: @autoclosure () -> String, _ code: Int32) throws(GitError) -> Int32 {
        if code < 0 { throw last(operation(), code: code) }
        return code
    }
}

/// libgit2's process-wide initialisation, done once before first use.
public enum LibGit2 {
    private static let initialised: Bool = {
        git_libgit2_init()
        // Source repos on a server are often owned by a 'git' user while the agent runs as root.
        // libgit2 only reads objects from them (no hooks, no filters, no checkout there), so the
        // ownership check git applies to work trees it would act in is not wanted here.
        _ = slipway_git_set_owner_validation(0)
        return true
    }()

    static func ensureInitialised() {
        _ = initialised
    }

    /// Starts the initialisation on a thread of its own, for a process that will use libgit2
    /// soon: it takes 6 to 18 ms here (mbedTLS parses the system's CA bundle, which libgit2 1.5
    /// offers no way to skip), overlapped with the start of the command. A first use waits for it.
    public static func initialiseInBackground() {
        Thread.detachNewThread { ensureInitialised() }
    }
}
