// TensorCore against independent double-precision computations written in the test.
import Testing
import TensorCore
import Foundation

/// Deterministic pseudo-random floats in [-1, 1) (SplitMix64).
func randomFloats(_ n: Int, seed: UInt64) -> [Float] {
    var s = seed
    return (0..<n).map { _ in
        s &+= 0x9E3779B97F4A7C15
        var z = s
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        z ^= z >> 31
        return Float(Double(z >> 11) / Double(1 << 53) * 2 - 1)
    }
}

@Suite("TensorCore ops")
struct TensorCoreTests {
    @Test("linear (both layouts) equals a double-precision loop; max |Δ| ≤ 1e-5")
    func linearMatchesLoop() {
        let rows = 7, inF = 300, outF = 200   // large enough to split over 3 threads (64-column chunks)
        let x = randomFloats(rows * inF, seed: 1), w = randomFloats(outF * inF, seed: 2), b = randomFloats(outF, seed: 3)
        var yOutIn = [Float](repeating: 0, count: rows * outF), yInOut = yOutIn
        // the same matrix stored transposed for the Conv1D layout
        var wT = [Float](repeating: 0, count: inF * outF)
        for o in 0..<outF { for i in 0..<inF { wT[i * outF + o] = w[o * inF + i] } }
        linear(x, rows: rows, inFeatures: inF, weight: w, layout: .outIn, outFeatures: outF, bias: b, into: &yOutIn)
        linear(x, rows: rows, inFeatures: inF, weight: wT, layout: .inOut, outFeatures: outF, bias: b, into: &yInOut)
        // The same products split by output columns over threads.
        var splitOutIn = [Float](repeating: 0, count: rows * outF), splitInOut = splitOutIn
        let split = ComputeContext(threads: 3)
        linear(x, rows: rows, inFeatures: inF, weight: w, layout: .outIn, outFeatures: outF, bias: b, into: &splitOutIn, compute: split)
        linear(x, rows: rows, inFeatures: inF, weight: wT, layout: .inOut, outFeatures: outF, bias: b, into: &splitInOut, compute: split)
        let splitDiff = zip(splitOutIn + splitInOut, yOutIn + yInOut).map { abs($0 - $1) }.max()!
        #expect(splitDiff <= 1e-5, "column split over threads: max |Δ| = \(splitDiff)")
        var worst: Double = 0
        for r in 0..<rows { for o in 0..<outF {
            var ref = Double(b[o])
            for i in 0..<inF { ref += Double(x[r * inF + i]) * Double(w[o * inF + i]) }
            worst = max(worst, abs(Double(yOutIn[r * outF + o]) - ref), abs(Double(yInOut[r * outF + o]) - ref))
        } }
        #expect(worst <= 1e-5, "max |Δ| = \(worst)")
    }

    @Test("16-bit weights decoded block by block give the product of the decoded matrix (max |Δ| ≤ 5e-5)", arguments: [HalfFormat.bf16, .f16])
    func halfLinear(format: HalfFormat) {
        let rows = 5, inF = 300, outF = 260   // more than one block in each direction
        let x = randomFloats(rows * inF, seed: 4)
        let bits: [UInt16] = randomFloats(outF * inF, seed: 5).map { v in
            format == .bf16 ? UInt16(v.bitPattern >> 16) : Float16(v).bitPattern
        }
        var decoded = [Float](repeating: 0, count: bits.count)
        bits.withUnsafeBytes { format.decode($0.baseAddress!, count: bits.count, into: &decoded) }
        var decodedT = [Float](repeating: 0, count: bits.count)
        for o in 0..<outF { for i in 0..<inF { decodedT[i * outF + o] = decoded[o * inF + i] } }
        var bitsT = [UInt16](repeating: 0, count: bits.count)
        for o in 0..<outF { for i in 0..<inF { bitsT[i * outF + o] = bits[o * inF + i] } }
        var dense = [Float](repeating: 0, count: rows * outF)
        linear(x, rows: rows, inFeatures: inF, weight: decoded, layout: .outIn, outFeatures: outF, bias: nil, into: &dense)
        // Serial, and split over 3 threads (each decodes its own columns: 260 = 128 + 128 + 4).
        for compute in [ComputeContext.serial, ComputeContext(threads: 3)] {
            var half = [Float](repeating: 0, count: rows * outF), halfT = half
            bits.withUnsafeBytes { raw in
                linearHalf(x, rows: rows, inFeatures: inF, weight: raw.baseAddress!, format: format, layout: .outIn,
                           outFeatures: outF, bias: nil, into: &half, compute: compute)
            }
            bitsT.withUnsafeBytes { raw in
                linearHalf(x, rows: rows, inFeatures: inF, weight: raw.baseAddress!, format: format, layout: .inOut,
                           outFeatures: outF, bias: nil, into: &halfT, compute: compute)
            }
            let d1 = zip(dense, half).map { abs($0 - $1) }.max()!, d2 = zip(dense, halfT).map { abs($0 - $1) }.max()!
            // Outputs are sums of 300 products of magnitude ≤ 1 (|y| ~ 10); blocking changes the float32
            // accumulation order, so allow a few ulps at that magnitude.
            #expect(d1 <= 5e-5 && d2 <= 5e-5, "\(compute): max |Δ| out-in \(d1), in-out \(d2)")
        }
    }

    @Test("F16 decoding: normals, subnormals, infinities and NaN match Swift's Float16")
    func f16Decoding() {
        let samples: [UInt16] = [0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x3C00, 0xC000, 0x7BFF, 0x7C00, 0xFC00, 0x3555]
        for h in samples {
            let mine = halfToFloat(h), ref = Float(Float16(bitPattern: h))
            #expect(mine.bitPattern == ref.bitPattern, "0x\(String(h, radix: 16)): \(mine) vs \(ref)")
        }
        #expect(halfToFloat(0x7E00).isNaN)
    }

    @Test("aligned (vectorised) and unaligned decoding of F16/BF16 agree bit for bit", arguments: [HalfFormat.bf16, .f16])
    func decodePaths(format: HalfFormat) {
        let n = 1000
        let bits: [UInt16] = (0..<n).map { UInt16(truncatingIfNeeded: $0 &* 40503) }  // covers NaN, inf, subnormals
        var aligned = [Float](repeating: 0, count: n), unaligned = aligned
        var bytes = [UInt8](repeating: 0, count: 2 * n + 1)
        bits.withUnsafeBytes { raw in for i in 0..<(2 * n) { bytes[i + 1] = raw[i] } }
        bits.withUnsafeBytes { format.decode($0.baseAddress!, count: n, into: &aligned) }
        bytes.withUnsafeBytes { format.decode($0.baseAddress! + 1, count: n, into: &unaligned) }
        #expect(zip(aligned, unaligned).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) })
    }

    @Test("RMSNorm and LayerNorm equal double-precision formulas; max |Δ| ≤ 1e-6")
    func norms() {
        let d = 64, x = randomFloats(3 * d, seed: 6), w = randomFloats(d, seed: 7), b = randomFloats(d, seed: 8)
        var rms = [Float](repeating: 0, count: 3 * d), ln = rms
        rmsNorm(x, rows: 3, d: d, weight: w, eps: 1e-6, into: &rms)
        layerNorm(x, rows: 3, d: d, weight: w, bias: b, eps: 1e-5, into: &ln)
        var worst: Double = 0
        for r in 0..<3 {
            let row = (0..<d).map { Double(x[r * d + $0]) }
            let ms = row.map { $0 * $0 }.reduce(0, +) / Double(d)
            let mean = row.reduce(0, +) / Double(d)
            let v = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(d)
            for j in 0..<d {
                worst = max(worst, abs(Double(rms[r * d + j]) - Double(w[j]) * row[j] / (ms + 1e-6).squareRoot()))
                worst = max(worst, abs(Double(ln[r * d + j]) - ((row[j] - mean) / (v + 1e-5).squareRoot() * Double(w[j]) + Double(b[j]))))
            }
        }
        #expect(worst <= 1e-5, "max |Δ| = \(worst)")
    }

    @Test("masked softmax: zero outside the window, sums to one inside")
    func softmax() {
        var x: [Float] = [3, 1, 4, 1, 5, 9, 2, 6]
        x.withUnsafeMutableBufferPointer { softmaxInPlace($0.baseAddress!, count: 8, firstValid: 2, valid: 6) }
        #expect(x[0] == 0 && x[1] == 0 && x[6] == 0 && x[7] == 0)
        #expect(abs(x[2...5].reduce(0, +) - 1) < 1e-6)
        let ref = [4.0, 1, 5, 9].map { exp($0 - 9) }, total = ref.reduce(0, +)
        for (i, r) in ref.enumerated() { #expect(abs(Double(x[2 + i]) - r / total) < 1e-6) }
    }
}
