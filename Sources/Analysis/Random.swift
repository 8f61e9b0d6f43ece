// The seeded pseudo-random generators behind the bootstrap. Both are written from the published
// reference C code, so a run of `cpiscope diff --seed N` can be reproduced anywhere:
//   SplitMix64: Steele, Lea & Flood, "Fast splittable pseudorandom number generators" (OOPSLA 2014);
//               reference code https://prng.di.unimi.it/splitmix64.c
//   xoshiro256**: Blackman & Vigna, "Scrambled linear pseudorandom number generators" (2018);
//               reference code https://prng.di.unimi.it/xoshiro256starstar.c
// A seed is expanded into xoshiro's 256-bit state with four SplitMix64 outputs, as the authors advise.

/// SplitMix64: a 64-bit state advanced by the golden-ratio increment and mixed by two
/// multiply-xorshift rounds. Used to seed `Xoshiro256StarStar`.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// xoshiro256** 1.0: the generator the bootstrap draws from.
public struct Xoshiro256StarStar: RandomNumberGenerator, Sendable {
    public private(set) var state: (UInt64, UInt64, UInt64, UInt64)

    /// State = the first four outputs of `SplitMix64(seed:)` (never all zero).
    public init(seed: UInt64) {
        var sm = SplitMix64(seed: seed)
        state = (sm.next(), sm.next(), sm.next(), sm.next())
    }

    @inline(__always) static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    public mutating func next() -> UInt64 {
        let result = Self.rotl(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = Self.rotl(state.3, 45)
        return result
    }

    /// A uniform index in `0..<n` (n > 0): the high 64 bits of `next() * n` (Lemire's
    /// multiply-shift, "Fast random integer generation in an interval", 2019, without the
    /// rejection step; the bias is below n / 2^64).
    public mutating func index(below n: Int) -> Int {
        precondition(n > 0, "index(below:) needs n > 0")
        return Int(next().multipliedFullWidth(by: UInt64(n)).high)
    }
}
