// SHA-256 with the CPU's SHA extensions (SHA256Kernel) against the portable implementation and the
// FIPS 180-4 examples. Where the CPU lacks the extensions the hardware half says so and checks nothing else.
import Checkpoints
import Foundation
import SHA256Kernel
import Testing

@Suite("SHA-256 kernels", .serialized)
struct SHA256Tests {
    static let vectors: [(String, [UInt8])] = [
        ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", []),
        ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", Array("abc".utf8)),
        ("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
         Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
        ("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)),
    ]

    func withHardware<T>(_ on: Bool, _ body: () throws -> T) rethrows -> T {
        let saved = SHA256.useHardware
        SHA256.useHardware = on
        defer { SHA256.useHardware = saved }
        return try body()
    }

    /// SHA-256 of `data` fed through `update` in pieces of irregular sizes (1, 4, 13, …).
    static func streamed(_ data: [UInt8], step: (Int) -> Int) -> String {
        var h = SHA256()
        var i = 0, n = 1
        data.withUnsafeBytes { raw in
            while i < raw.count {
                let take = min(n, raw.count - i)
                h.update(UnsafeRawBufferPointer(rebasing: raw[i..<(i + take)]))
                i += take
                n = step(n)
            }
        }
        return h.hexDigest()
    }

    @Test("both kernels give the FIPS 180-4 digests, in one piece and streamed")
    func vectors() {
        let hardware = cpiscope_sha256_ni_available() == 1
        for on in hardware ? [false, true] : [false] {
            for (want, bytes) in Self.vectors {
                #expect(withHardware(on) { ContentHash.sha256(bytes) } == want, "hardware \(on), \(bytes.count) bytes")
                #expect(withHardware(on) { Self.streamed(bytes) { $0 * 3 % 1000 + 1 } } == want, "hardware \(on), \(bytes.count) bytes streamed")
            }
        }
        #expect(SHA256.useHardware == hardware, "the SHA extensions are used exactly when the CPU has them")
    }

    @Test("the SHA-extension kernel equals the portable one on every length 0…300 and on streamed megabytes")
    func hardwareEqualsPortable() throws {
        try #require(cpiscope_sha256_ni_available() == 1, "this CPU has no SHA extensions; only the portable kernel runs here")
        var state: UInt64 = 0x243F6A8885A308D3
        let data: [UInt8] = (0..<3_000_017).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
        for n in 0...300 {
            let slice = Array(data[0..<n])
            #expect(withHardware(true) { ContentHash.sha256(slice) } == withHardware(false) { ContentHash.sha256(slice) }, "\(n) bytes")
        }
        let streamed = { Self.streamed(data) { $0 * 7 % 100_003 + 1 } }
        #expect(withHardware(true, streamed) == withHardware(false, streamed))
    }
}
