import ArgumentParser
import Foundation
import Slipway
import SlipwayCore

struct TrustCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trust",
        abstract: "Show or override how the agent trusts the manifests branch.",
        discussion: """
        With manifests.verify set, the agent only moves to a branch tip signed by a key in \
        allowed_signers that descends from the last commit it verified. A force-push back to older \
        history is refused even when that history is signed (the classic rollback attack). \
        '--allow-rewind' accepts the next such tip once, if it is signed; a deliberate rollback is \
        better done by pushing a new signed commit that reverts.
        """
    )

    @OptionGroup var options: ConfigOptions

    @Flag(help: "Accept the next signed tip that does not descend from the last verified commit, once.")
    var allowRewind = false

    @Option(help: ArgumentHelp("Verify this commit of the manifests mirror now and say why it would be accepted or refused.", valueName: "commit"))
    var check: String?

    func run() async throws {
        try await Self.reporting {
            let config = try options.load()
            guard config.manifests.verify != nil else {
                throw CLIError("manifests commits are not verified on this host: add manifests.verify to \(options.config)")
            }
            let trust = StateFile(stateDir: config.stateDir).load().trust
            if let check {
                let report = try TrustCheck.run(commit: check, config: config)
                print(report.text)
                if !report.accepted { throw ExitCode(1) }
                return
            }
            if allowRewind {
                try FileManager.default.createDirectory(atPath: config.stateDir, withIntermediateDirectories: true)
                try Data("allowed by an operator at \(UTCTime.now.iso8601)\n".utf8).write(to: URL(fileURLWithPath: TrustGateFiles.rewind(config)))
                if let pid = AgentLock.holder(stateDir: config.stateDir) { kill(pid, SIGHUP) }
                print("the next signed tip that rewinds the manifests branch will be accepted once")
                return
            }
            print("last verified: \(trust?.lastVerifiedCommit ?? "none")" + (trust?.lastVerifiedSigner.map { " by \($0)" } ?? ""))
            if let refused = trust?.refused {
                print("refused: \(refused.commit) (\(refused.reason)) at \(refused.at.iso8601): \(refused.message)")
            }
        }
    }
}
