// The direct AVX512-BF16 kernel for few rows (CBF16Kernel through linearBF16) against a float64 reference
// over the bf16-rounded operands and against oneDNN's matmul primitive.
import Foundation
import NumericTolerance
import Testing
import TensorCore

@Suite("bf16 direct kernel (few rows)",
       .enabled(if: directBF16KernelAvailable, "the direct kernel is off: this CPU lacks AVX512-BF16, or CPISCOPE_BF16_DIRECT=0 (make test's oneDNN pass)"))
struct BF16KernelTests {
    /// Shapes that cover every tail of the kernel: `in` not a multiple of 32 (and odd: the [in, out]
    /// kernel pairs inputs), `out` not a multiple of 3, 4, 6, 8, 16 or 32, more than one 64-input chunk of
    /// the [in, out] kernel, every row count 1...16 (one output at a time while the rows of x fit in half
    /// of L1, rows · in · 2 ≤ 32 KiB; beyond, tiles of 1-2 rows × 8 outputs, 3-4 × 4 and 5-8 × 3; from 9
    /// rows, groups of 4 with their remainders), several 1024-input blocks with partial sums between them
    /// (9-16 rows, and 5-8 rows whose x passes 64 KiB; `in` > 1024, the last block short), and more than
    /// 16 rows (a second pass over the outputs).
    static let shapes: [(rows: Int, inF: Int, outF: Int)] =
        [(1, 1, 1), (2, 31, 17), (3, 33, 5), (4, 64, 16), (5, 100, 130), (6, 257, 3), (7, 300, 259), (8, 129, 33),
         (9, 65, 47), (10, 7, 64), (11, 96, 31), (12, 190, 129), (13, 32, 1), (14, 161, 67), (15, 255, 18), (16, 300, 260),
         (1, 2081, 19), (8, 1100, 10), (9, 2100, 13), (14, 1057, 20), (16, 3000, 7), (21, 1030, 9),
         // x beyond 32 KiB: the 8-, 4- and 3-output tiles and their last outputs one at a time
         (1, 16_400, 11), (2, 8_300, 19), (4, 4_100, 13), (5, 3_300, 7), (8, 2_081, 11),
         // 5-8 rows with x beyond 64 KiB: the 1024-input blocks (the last one short)
         (6, 6_000, 13), (8, 4_200, 5)]

    enum Stored: String, CaseIterable { case bf16, f32 }

    /// Runs linearBF16 on one shape: W random [out, in] (or its transpose for .inOut), x random, y rows
    /// `outF + 3` apart with the gaps set to 7, bias on odd rows counts. Returns y and the float64
    /// reference Σ bf16(x)·bf16(W) + b, and the bound γ_K·(‖bf16(x_r)‖₂·‖bf16(W_o)‖₂ + |b_o|) per element.
    static func run(rows: Int, inF: Int, outF: Int, layout: WeightLayout, stored: Stored, kernel: BF16Kernel,
                    compute: ComputeContext, seed: UInt64) -> (y: [Float], ref: [Double], scale: [Double], ld: Int) {
        let x = randomFloats(rows * inF, seed: seed), w = randomFloats(outF * inF, seed: seed + 1)  // w: [out, in]
        let bias = randomFloats(outF, seed: seed + 2)
        var stored2D = [Float](repeating: 0, count: w.count)   // the weight in `layout`
        for o in 0..<outF { for i in 0..<inF {
            stored2D[layout == .outIn ? o * inF + i : i * outF + o] = w[o * inF + i]
        } }
        let bits = stored2D.map { UInt16(referenceBF16($0).bitPattern >> 16) }
        let ld = outF + 3
        var y = [Float](repeating: 7, count: rows * ld)
        stored2D.withUnsafeBufferPointer { f in
            bits.withUnsafeBytes { raw in
                let operand: BF16Operand = stored == .bf16 ? .bf16(raw.baseAddress!) : .f32(f.baseAddress!)
                linearBF16(x, rows: rows, inFeatures: inF, weight: operand, layout: layout, outFeatures: outF,
                           bias: bias, into: &y, yStride: ld, compute: compute, kernel: kernel)
            }
        }
        var ref = [Double](repeating: 0, count: rows * outF), scale = ref
        for r in 0..<rows { for o in 0..<outF {
            var s = Double(bias[o]), xx = 0.0, ww = 0.0
            for i in 0..<inF {
                let a = Double(referenceBF16(x[r * inF + i])), b = Double(referenceBF16(w[o * inF + i]))
                s += a * b; xx += a * a; ww += b * b
            }
            ref[r * outF + o] = s
            // the norm form of the bound: γ_K·(‖bf16(x_r)‖·‖bf16(W_o)‖ + |b_o|), K = in + 1 (Tolerance)
            scale[r * outF + o] = Tolerance.dotProduct(length: inF + 1, absoluteSum: (xx * ww).squareRoot() + abs(Double(bias[o])))
        } }
        return (y, ref, scale, ld)
    }

    @Test("""
          direct kernel = float64 Σ bf16(x)·bf16(W) within γ_K·‖x_r‖·‖W_o‖ (Tolerance: float32 accumulation \
          of exact bf16 products), both layouts, bf16 and f32 weights, rows 1…16, odd sizes, 1 and 3 threads; \
          the gaps of strided y untouched
          """, arguments: [WeightLayout.outIn, .inOut])
    func directMatchesFloat64(layout: WeightLayout) throws {
        var worst = 0.0
        for (n, s) in Self.shapes.enumerated() {
            for stored in Stored.allCases {
                for compute in [ComputeContext.serial, ComputeContext(threads: 3)] {
                    let (y, ref, scale, ld) = Self.run(rows: s.rows, inF: s.inF, outF: s.outF, layout: layout, stored: stored,
                                                       kernel: .direct, compute: compute, seed: 100 + UInt64(3 * n))
                    for r in 0..<s.rows {
                        for o in 0..<s.outF {
                            worst = max(worst, abs(Double(y[r * ld + o]) - ref[r * s.outF + o]) / scale[r * s.outF + o])
                        }
                        #expect(y[(r * ld + s.outF)..<(r * ld + ld)].allSatisfy { $0 == 7 }, "gap of row \(r) written, shape \(s)")
                    }
                }
            }
        }
        #expect(worst <= 1, "\(layout): max |Δ| is \(worst)× the bound γ_K·‖x‖·‖W‖")
        print("direct kernel \(layout): worst |Δ| / bound = \(worst)")
    }

    @Test("direct kernel = oneDNN within 2·γ_K·‖x_r‖·‖W_o‖ on the same shapes (two float32 results; only the order of the sums differs)",
          arguments: [WeightLayout.outIn, .inOut])
    func directMatchesOneDNN(layout: WeightLayout) throws {
        try #require(bf16Available, "oneDNN bf16 matmul unavailable")
        var worst = 0.0
        for (n, s) in Self.shapes.enumerated() {
            let seed = 500 + UInt64(3 * n), compute = ComputeContext(threads: 2)
            let a = Self.run(rows: s.rows, inF: s.inF, outF: s.outF, layout: layout, stored: .bf16, kernel: .direct, compute: compute, seed: seed)
            let b = Self.run(rows: s.rows, inF: s.inF, outF: s.outF, layout: layout, stored: .bf16, kernel: .oneDNN, compute: compute, seed: seed)
            for r in 0..<s.rows { for o in 0..<s.outF {
                worst = max(worst, abs(Double(a.y[r * a.ld + o]) - Double(b.y[r * b.ld + o])) / a.scale[r * s.outF + o])
            } }
        }
        #expect(worst <= 2, "\(layout): max |direct − oneDNN| is \(worst)× the bound γ_K·‖x‖·‖W‖ (allowed: 2)")
    }

    @Test("a row's result does not depend on how many rows share the product (tile shapes change with the row count; each row's sums do not)",
          arguments: [WeightLayout.outIn, .inOut])
    func rowsIndependentOfRowCount(layout: WeightLayout) throws {
        // in = 4100: one output at a time up to 3 rows, 4-output tiles at 4, 3-output tiles at 5-7, the
        // 1024-input blocks from 8 (x past 64 KiB); in = 11100: 8-output tiles at 2 rows, 4-output tiles at 3-4,
        // the 1024-input blocks from 5. Rows of x are the same prefix of one random stream whatever the row
        // count (randomFloats), W the same.
        for (inF, outF) in [(4100, 21), (11_100, 9)] {
            let all = Self.run(rows: 16, inF: inF, outF: outF, layout: layout, stored: .bf16, kernel: .direct, compute: .serial, seed: 31)
            for rows in [1, 2, 3, 4, 5, 8, 9, 13] {
                let part = Self.run(rows: rows, inF: inF, outF: outF, layout: layout, stored: .bf16, kernel: .direct, compute: .serial, seed: 31)
                for r in 0..<rows {
                    let a = part.y[(r * part.ld)..<(r * part.ld + outF)].map(\.bitPattern)
                    let b = all.y[(r * all.ld)..<(r * all.ld + outF)].map(\.bitPattern)
                    #expect(a == b, "in \(inF): row \(r) of \(rows) differs from the same row of 16")
                }
            }
        }
    }

    @Test("automatic uses the direct kernel up to directBF16MaxRows rows: bit-identical to .direct there")
    func automaticPicksDirect() throws {
        for rows in [1, 16, min(directBF16MaxRows, 24)] {
            let a = Self.run(rows: rows, inF: 70, outF: 45, layout: .outIn, stored: .bf16, kernel: .automatic, compute: .serial, seed: 9)
            let b = Self.run(rows: rows, inF: 70, outF: 45, layout: .outIn, stored: .bf16, kernel: .direct, compute: .serial, seed: 9)
            #expect(a.y.map(\.bitPattern) == b.y.map(\.bitPattern), "rows \(rows)")
        }
    }
}
