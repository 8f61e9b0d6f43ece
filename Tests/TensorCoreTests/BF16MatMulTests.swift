// bf16 products on oneDNN against double-precision loops over the bf16-rounded operands.
import Testing
import TensorCore
import Foundation
import NumericTolerance

/// Round-to-nearest-even to bfloat16, written independently of `encodeBF16`: pick the nearer of the two
/// truncated neighbours (ties: the one with an even last bit). Finite values only.
func referenceBF16(_ v: Float) -> Float {
    let down = Float(bitPattern: v.bitPattern & 0xFFFF_0000)
    let up = Float(bitPattern: (v.bitPattern & 0xFFFF_0000) &+ 0x1_0000)
    let dDown = abs(Double(v) - Double(down)), dUp = abs(Double(up) - Double(v))
    if dDown != dUp { return dDown < dUp ? down : up }
    return (down.bitPattern >> 16) & 1 == 0 ? down : up
}

@Suite("bf16 products (oneDNN)")
struct BF16MatMulTests {
    @Test("encodeBF16 rounds to nearest even like the reference; NaN stays NaN")
    func rounding() {
        var samples = randomFloats(2000, seed: 11).map { $0 * 1000 }
        samples += [1, 1 + 1 / 256, 1 + 3 / 256, -1 - 1 / 256, 0, -0, .leastNonzeroMagnitude, 3.0e38]
        var out = [UInt16](repeating: 0, count: samples.count)
        encodeBF16(samples, count: samples.count, into: &out)
        for (v, b) in zip(samples, out) {
            let mine = Float(bitPattern: UInt32(b) << 16), ref = referenceBF16(v)
            #expect(mine.bitPattern == ref.bitPattern, "\(v): \(mine) vs \(ref)")
        }
        var nan: UInt16 = 0
        encodeBF16([Float.nan], count: 1, into: &nan)
        #expect(Float(bitPattern: UInt32(nan) << 16).isNaN)
    }

    enum Stored: String, CaseIterable { case bf16, f16, f32 }

    @Test("linearBF16 (both layouts, bf16/f16/f32 weights, serial and 3 threads: bit-identical) equals a double loop over bf16(x)·bf16(W) within γ_K·Σ|x·w| (products of bf16 values are exact in float32)",
          arguments: Stored.allCases)
    func linearMatchesRoundedLoop(stored: Stored) throws {
        try #require(bf16Available, "oneDNN bf16 matmul unavailable")
        let rows = 5, inF = 300, outF = 260   // 260 columns: blocks of 128 + 128 + 4
        let x = randomFloats(rows * inF, seed: 12), b = randomFloats(outF, seed: 13)
        let w = randomFloats(outF * inF, seed: 14).map { stored == .f16 ? Float(Float16($0)) : $0 }  // [out, in]
        var wT = [Float](repeating: 0, count: w.count)
        for o in 0..<outF { for i in 0..<inF { wT[i * outF + o] = w[o * inF + i] } }
        func bits(_ m: [Float]) -> [UInt16] {
            switch stored {
            case .bf16: return m.map { UInt16(referenceBF16($0).bitPattern >> 16) }
            case .f16: return m.map { Float16($0).bitPattern }
            case .f32: return []
            }
        }
        let wb = bits(w), wTb = bits(wT)
        func run(_ layout: WeightLayout, _ compute: ComputeContext) -> [Float] {
            var y = [Float](repeating: .nan, count: rows * outF)
            let (m, mb) = layout == .outIn ? (w, wb) : (wT, wTb)
            m.withUnsafeBufferPointer { f in
                mb.withUnsafeBytes { raw in
                    let operand: BF16Operand = switch stored {
                    case .bf16: .bf16(raw.baseAddress!)
                    case .f16: .f16(raw.baseAddress!)
                    case .f32: .f32(f.baseAddress!)
                    }
                    linearBF16(x, rows: rows, inFeatures: inF, weight: operand, layout: layout, outFeatures: outF,
                               bias: b, into: &y, compute: compute)
                }
            }
            return y
        }
        let xr = x.map(referenceBF16), wr = w.map(referenceBF16)
        let reference = ProductReference(x: xr, w: wr, bias: b, rows: rows, inFeatures: inF, outFeatures: outF)
        for layout in [WeightLayout.outIn, .inOut] {
            let serial = run(layout, .serial)
            #expect(run(layout, ComputeContext(threads: 3)).map(\.bitPattern) == serial.map(\.bitPattern), "\(stored) \(layout): 3 threads differ from 1")
            let worst = Tolerance.worstRatio(serial.map(Double.init), reference.values, bounds: reference.bounds())
            #expect(worst.ratio <= 1, "\(stored) \(layout): |Δ| = \(worst.difference) is \(worst.ratio)× the bound γ_K·Σ|x·w|")
        }
    }

    @Test("strided output rows: y rows yStride apart, the gaps untouched")
    func stridedOutput() throws {
        try #require(bf16Available, "oneDNN bf16 matmul unavailable")
        let rows = 3, inF = 64, outF = 70, ld = 100
        let x = randomFloats(rows * inF, seed: 15), w = randomFloats(outF * inF, seed: 16)
        var dense = [Float](repeating: 0, count: rows * outF), strided = [Float](repeating: 7, count: rows * ld)
        w.withUnsafeBufferPointer { wp in
            linearBF16(x, rows: rows, inFeatures: inF, weight: .f32(wp.baseAddress!), layout: .outIn, outFeatures: outF,
                       bias: nil, into: &dense)
            linearBF16(x, rows: rows, inFeatures: inF, weight: .f32(wp.baseAddress!), layout: .outIn, outFeatures: outF,
                       bias: nil, into: &strided, yStride: ld)
        }
        for r in 0..<rows {
            #expect(Array(strided[(r * ld)..<(r * ld + outF)]) == Array(dense[(r * outF)..<((r + 1) * outF)]))
            #expect(strided[(r * ld + outF)..<((r + 1) * ld)].allSatisfy { $0 == 7 })
        }
    }

    @Test("products of one input in one call (q, k, v; gate, up): each bit-identical to its product alone, strided outputs and bias, 1 and 3 threads, few rows (direct kernel) and many (oneDNN)")
    func groupedEqualsAlone() throws {
        try #require(bf16Available, "oneDNN bf16 matmul unavailable")
        let inF = 300
        let shapes: [(out: Int, layout: WeightLayout, f32: Bool)] = [(260, .outIn, false), (70, .outIn, false), (133, .inOut, false), (40, .outIn, true)]
        let weights = shapes.enumerated().map { randomFloats($1.out * inF, seed: 70 + UInt64($0)) }
        let bits = weights.map { $0.map { UInt16(referenceBF16($0).bitPattern >> 16) } }
        let bias = randomFloats(260, seed: 80)
        for rows in [3, 40] {
            let x = randomFloats(rows * inF, seed: 81)
            let ld = shapes.map(\.out).reduce(0, +) + 5   // every output side by side in one row, and a gap
            var offsets: [Int] = [], o = 0
            for s in shapes { offsets.append(o); o += s.out }
            for compute in [ComputeContext.serial, ComputeContext(threads: 3)] {
                var alone = [Float](repeating: 7, count: rows * ld), grouped = alone
                try bits.withUnsafeBufferPointers { b in
                    try weights.withUnsafeBufferPointers { f in
                        func operand(_ i: Int) -> BF16Operand { shapes[i].f32 ? .f32(f[i].baseAddress!) : .bf16(UnsafeRawPointer(b[i].baseAddress!)) }
                        bias.withUnsafeBufferPointer { bp in
                            alone.withUnsafeMutableBufferPointer { y in
                                for i in shapes.indices {
                                    linearBF16(x, rows: rows, inFeatures: inF, weight: operand(i), layout: shapes[i].layout, outFeatures: shapes[i].out,
                                               bias: i == 1 ? nil : bp.baseAddress, into: y.baseAddress! + offsets[i], yStride: ld, compute: compute)
                                }
                            }
                            grouped.withUnsafeMutableBufferPointer { y in
                                linearBF16(x, rows: rows, inFeatures: inF, products: shapes.indices.map { i in
                                    BF16LinearProduct(weight: operand(i), layout: shapes[i].layout, outFeatures: shapes[i].out,
                                                      bias: i == 1 ? nil : bp.baseAddress, into: y.baseAddress! + offsets[i], yStride: ld)
                                }, compute: compute)
                            }
                        }
                    }
                }
                #expect(grouped.map(\.bitPattern) == alone.map(\.bitPattern), "rows \(rows), \(compute)")
                #expect(alone.contains { $0 != 7 } && (0..<rows).allSatisfy { r in (0..<5).allSatisfy { alone[r * ld + ld - 5 + $0] == 7 } })
            }
        }
    }
}

extension Array {
    /// Calls `body` with an unsafe buffer pointer to each element array (nested arrays kept alive).
    func withUnsafeBufferPointers<T, R>(_ body: ([UnsafeBufferPointer<T>]) throws -> R) rethrows -> R where Element == [T] {
        func go(_ i: Int, _ acc: [UnsafeBufferPointer<T>]) throws -> R {
            if i == count { return try body(acc) }
            return try self[i].withUnsafeBufferPointer { try go(i + 1, acc + [$0]) }
        }
        return try go(0, [])
    }
}
