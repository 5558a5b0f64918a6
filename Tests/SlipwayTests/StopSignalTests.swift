import Foundation
import Testing
@testable import SlipwayCore

/// The numbers SlipwayCore gives the stop signals are the ones this platform's C library uses
/// (SlipwayCore has no Glibc to ask).
@Suite struct StopSignalTests {
    @Test func everyStopSignalHasItsPlatformNumber() {
        let platform: [Workers.StopSignal: Int32] = [.int: SIGINT, .term: SIGTERM, .quit: SIGQUIT, .hup: SIGHUP,
                                                     .usr1: SIGUSR1, .usr2: SIGUSR2, .winch: SIGWINCH]
        #expect(platform.count == Workers.StopSignal.allCases.count)
        for signal in Workers.StopSignal.allCases {
            #expect(signal.number == platform[signal], "\(signal.rawValue)")
            #expect(String(cString: strsignal(signal.number)).isEmpty == false)
        }
    }
}
