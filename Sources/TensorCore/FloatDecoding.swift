// Decoding of 16-bit float formats into Float32.
// BF16 is the upper half of an IEEE-754 binary32; F16 is IEEE-754 binary16.

/// Converts `count` little-endian bfloat16 values at `src` into `dst`.
public func decodeBF16(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
    if Int(bitPattern: src) % 2 == 0, Int(1).littleEndian == 1 {
        // Fast path (aligned, little-endian host): a plain widening loop the compiler vectorises.
        let h = src.assumingMemoryBound(to: UInt16.self)
        let out = UnsafeMutableRawPointer(dst).assumingMemoryBound(to: UInt32.self)
        for i in 0..<count { out[i] = UInt32(h[i]) << 16 }
        return
    }
    for i in 0..<count {
        let bits = UInt32(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian) << 16
        dst[i] = Float(bitPattern: bits)
    }
}

/// Converts `count` little-endian IEEE binary16 values at `src` into `dst`.
public func decodeF16(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
    #if arch(x86_64) || arch(arm64)
    if Int(bitPattern: src) % 2 == 0, Int(1).littleEndian == 1 {
        // Fast path: the platform's Float16 → Float conversion (exact, like `halfToFloat`).
        let h = src.assumingMemoryBound(to: Float16.self)
        for i in 0..<count { dst[i] = Float(h[i]) }
        return
    }
    #endif
    for i in 0..<count {
        let h = src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian
        dst[i] = halfToFloat(h)
    }
}

/// One IEEE binary16 value as Float (handles subnormals, infinities and NaN).
@inline(__always)
public func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exp = Int((h >> 10) & 0x1F)
    let mant = UInt32(h & 0x3FF)
    if exp == 0 {
        if mant == 0 { return Float(bitPattern: sign) }
        // subnormal: mant * 2^-24
        let v = Float(mant) * Float(bitPattern: 0x3380_0000) // 2^-24
        return sign != 0 ? -v : v
    }
    if exp == 31 {
        return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13))
    }
    return Float(bitPattern: sign | UInt32(exp + 112) << 23 | (mant << 13))
}

/// Converts `count` little-endian float32 values at a possibly unaligned `src` into `dst`.
public func decodeF32(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
    for i in 0..<count {
        dst[i] = Float(bitPattern: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian)
    }
}

/// Converts `count` float32 values into bfloat16 bit patterns, rounding to nearest even (what
/// `torch.Tensor.to(torch.bfloat16)` does); a NaN stays a (quiet) NaN.
public func encodeBF16(_ src: UnsafePointer<Float>, count: Int, into dst: UnsafeMutablePointer<UInt16>) {
    let bits = UnsafeRawPointer(src).assumingMemoryBound(to: UInt32.self)
    for i in 0..<count {
        let b = bits[i]
        let rounded = UInt16(truncatingIfNeeded: (b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16)
        dst[i] = (b & 0x7FFF_FFFF) > 0x7F80_0000 ? UInt16(truncatingIfNeeded: b >> 16) | 0x40 : rounded
    }
}
