import Foundation
import LoopbackPorts
import Testing
@testable import Slipway
import SlipwayCore

/// The check after a nginx reload, on this host's real sockets: a listen counts only when a
/// socket of nginx's account listens there (this test's own, here), and a bind as nginx does it
/// tells a held address from a free one.
@Suite(.timeLimit(.minutes(1)))
struct NginxListenCheckTests {
    /// A socket listening on 127.0.0.1:`port`, opened by this process.
    static func listen(on port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port)).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard bound, Glibc.listen(fd, 8) == 0 else { close(fd); throw CheckError("cannot listen on \(port): errno \(errno)") }
        return fd
    }

    struct CheckError: Error { let text: String; init(_ text: String) { self.text = text } }

    @Test func aListenHeldByNginxsAccountCountsAndAnotherAccountsDoesNot() async throws {
        let port = try LoopbackPort.free()
        let fd = try Self.listen(on: port)
        defer { close(fd) }
        let listens: [AppName: ServeListen] = [AppName("shop")!: .address(host: "127.0.0.1", port: port)]
        let quick = NginxListenCheck(deadline: .milliseconds(300))
        #expect(await quick.unserved(listens).isEmpty)
        // The same socket, but nginx runs as another account: it is not nginx's.
        var elsewhere = quick
        elsewhere.owners = [geteuid() &+ 4242]
        #expect(await elsewhere.unserved(listens) == listens)
        #expect(!NginxListenCheck.canBind(.address(host: "127.0.0.1", port: port)))
        // The wildcard on that port cannot be bound either, as nginx's `listen <port>` could not.
        #expect(!NginxListenCheck.canBind(.port(port)))
    }

    @Test func aFreeAddressIsMissingAndCanBeBound() async throws {
        let port = try LoopbackPort.free()
        let listen = ServeListen.address(host: "127.0.0.1", port: port)
        let started = ContinuousClock.now
        let missing = await NginxListenCheck(deadline: .milliseconds(300)).unserved([AppName("shop")!: listen])
        #expect(missing == [AppName("shop")!: listen])
        #expect(ContinuousClock.now - started < .seconds(2))
        #expect(NginxListenCheck.canBind(listen))
        // Not this host's address, and a host name: nginx could not be shown to bind them.
        #expect(!NginxListenCheck.canBind(.address(host: "192.0.2.1", port: port)))
        #expect(!NginxListenCheck.canBind(.address(host: "localhost", port: port)))
    }
}
