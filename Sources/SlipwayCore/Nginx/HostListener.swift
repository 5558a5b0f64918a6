/// A TCP socket listening on this host, as `/proc/net/tcp` and `/proc/net/tcp6` list it: how
/// the agent tells that nginx took a reload. nginx's master (root) opens the listening sockets
/// itself, so a new `listen` it could not bind has no root-owned socket, whatever else (an app's
/// own listener, say) answers on that port.
public struct HostListener: Sendable, Equatable {
    /// Network byte order: 4 bytes for IPv4, 16 for IPv6.
    public var address: [UInt8]
    public var port: Int
    /// The account that opened it.
    public var uid: UInt32

    public init(address: [UInt8], port: Int, uid: UInt32) {
        self.address = address
        self.port = port
        self.uid = uid
    }

    /// The LISTEN rows (state `0A`) of a `/proc/net/tcp` or `/proc/net/tcp6` text; any row that
    /// does not read as one is skipped.
    public static func parse(procNet text: String) -> [HostListener] {
        var sockets: [HostListener] = []
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 7, fields[3] == "0A", let uid = UInt32(fields[7]) else { continue }
            let local = fields[1].split(separator: ":")
            guard local.count == 2, let port = Int(local[1], radix: 16), let address = addressBytes(local[0]) else { continue }
            sockets.append(HostListener(address: address, port: port, uid: uid))
        }
        return sockets
    }

    /// Whether this socket serves `address` (nil: a host name, any address) on `port`: the same
    /// address, or its family's wildcard, which is how nginx serves an address-specific
    /// `listen` on a port where another server block listens on the wildcard.
    public func serves(address wanted: [UInt8]?, port wantedPort: Int) -> Bool {
        guard port == wantedPort else { return false }
        guard let wanted else { return true }
        return address.count == wanted.count && (address == wanted || address.allSatisfy { $0 == 0 })
    }

    /// The kernel prints an address as 32-bit words in host byte order (`%08X` each): the bytes
    /// of each word as it is in memory are the address's bytes.
    static func addressBytes(_ hex: Substring) -> [UInt8]? {
        guard hex.count == 8 || hex.count == 32 else { return nil }
        var bytes: [UInt8] = []
        var rest = hex[...]
        while !rest.isEmpty {
            guard let word = UInt32(rest.prefix(8), radix: 16) else { return nil }
            withUnsafeBytes(of: word) { bytes.append(contentsOf: $0) }
            rest = rest.dropFirst(8)
        }
        return bytes
    }
}
