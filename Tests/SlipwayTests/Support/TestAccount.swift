import Foundation
@testable import Slipway

/// A system account made for one test (`useradd --system`, no home, no login shell) and
/// removed when the test lets go of it. Names carry the branch tag and a random suffix, so
/// tests running at the same time never share one.
final class TestAccount {
    let name: String
    let uid: uid_t
    let gid: gid_t

    init(tag: String = "t16") throws {
        name = "slw\(tag)-\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
        try Self.run(["/usr/sbin/useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group", name])
        let account = try AppAccount.lookup(name)
        uid = account.uid
        gid = account.gid
    }

    deinit {
        try? Self.run(["/usr/sbin/userdel", name])
        try? Self.run(["/usr/sbin/groupdel", name])
    }

    /// `argv` as this account (no supplementary groups), started but not waited for.
    func start(_ argv: [String], output: FileHandle? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = ["--reuid=\(uid)", "--regid=\(gid)", "--clear-groups", "--"] + argv
        process.standardOutput = output ?? FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    static func run(_ argv: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw SystemError(argv.joined(separator: " "), path: "", code: EINVAL) }
    }
}
