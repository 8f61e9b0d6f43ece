// TensorCore against independent double-precision computations written in the test.
import Testing
import TensorCore
import Foundation
import NumericTolerance

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
    @Test("""
          linear (both layouts) equals a double-precision loop within γ_K·Σ|x·w| (Tolerance, K = in + 1 with \
          the bias); 1, 2 and 3 threads give bit-identical results (column tiles fixed by the shape)
          """)
    func linearMatchesLoop() {
        let rows = 7, inF = 300, outF = 700   // 700 columns: tiles of the shape (ProductTiling), split over threads
        let x = randomFloats(rows * inF, seed: 1), w = randomFloats(outF * inF, seed: 2), b = randomFloats(outF, seed: 3)
        // the same matrix stored transposed for the Conv1D layout
        var wT = [Float](repeating: 0, count: inF * outF)
        for o in 0..<outF { for i in 0..<inF { wT[i * outF + o] = w[o * inF + i] } }
        func run(_ layout: WeightLayout, _ compute: ComputeContext) -> [Float] {
            var y = [Float](repeating: .nan, count: rows * outF)
            linear(x, rows: rows, inFeatures: inF, weight: layout == .outIn ? w : wT, layout: layout, outFeatures: outF,
                   bias: b, into: &y, compute: compute)
            return y
        }
        let reference = ProductReference(x: x, w: w, bias: b, rows: rows, inFeatures: inF, outFeatures: outF)
        for layout in [WeightLayout.outIn, .inOut] {
            let serial = run(layout, .serial)
            for threads in [2, 3] {
                #expect(run(layout, ComputeContext(threads: threads)).map(\.bitPattern) == serial.map(\.bitPattern),
                        "\(layout): \(threads) threads differ from 1")
            }
            let worst = Tolerance.worstRatio(serial.map(Double.init), reference.values, bounds: reference.bounds())
            #expect(worst.ratio <= 1, "\(layout): |Δ| = \(worst.difference) at \(worst.index) is \(worst.ratio)× the bound γ_K·Σ|x·w|")
            print("linear \(layout): worst |Δ| / (γ_K·Σ|x·w|) = \(worst.ratio)")
        }
    }

    @Test("the OpenBLAS restart fires only for Prescott kernels on a CPU with SkylakeX instructions, and never over the user's choice")
    func blasCoreDecision() {
        #expect(blasCoreTypeOverride(environment: [:], openBLASCore: "Prescott", hasSkylakeXInstructions: true) == "SkylakeX")
        #expect(blasCoreTypeOverride(environment: [:], openBLASCore: "Prescott", hasSkylakeXInstructions: false) == nil)
        for core in ["Haswell", "SkylakeX", "Zen", "Cooperlake", "Sandybridge"] {
            #expect(blasCoreTypeOverride(environment: [:], openBLASCore: core, hasSkylakeXInstructions: true) == nil, "\(core)")
        }
        #expect(blasCoreTypeOverride(environment: ["OPENBLAS_CORETYPE": "Prescott"], openBLASCore: "Prescott", hasSkylakeXInstructions: true) == nil)
        #expect(blasCoreTypeOverride(environment: ["CPISCOPE_KEEP_BLAS_CORE": "1"], openBLASCore: "Prescott", hasSkylakeXInstructions: true) == nil)
    }

    @Test("ProductTiling: bounds from the shape alone, aligned, covering every column once; power-of-two tile counts")
    func tiling() {
        for (count, align, minWidth) in [(768, 64, 256), (2304, 64, 256), (50257, 64, 256), (11008, 128, 256), (100, 64, 256), (1, 1, 1)] {
            let t = ProductTiling(count: count, align: align, minimumWidth: minWidth)
            #expect(t.tiles.first?.lowerBound == 0 && t.tiles.last?.upperBound == count, "\(count): \(t.tiles)")
            #expect(zip(t.tiles, t.tiles.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound && $1.lowerBound % align == 0 })
            #expect(t.tiles.count <= 16 && (t.tiles.count == 1 || t.tiles.allSatisfy { $0.count >= minWidth - align }), "\(count): \(t.tiles)")
        }
        #expect(ProductTiling(count: 768, align: 64, minimumWidth: 256).tiles == [0..<384, 384..<768])
        #expect(ProductTiling(count: 100, align: 64, minimumWidth: 256).tiles == [0..<100])
    }

    @Test("16-bit weights decoded block by block give the product of the decoded matrix within 2·γ_K·Σ|x·w| (two float32 results)", arguments: [HalfFormat.bf16, .f16])
    func halfLinear(format: HalfFormat) {
        let rows = 5, inF = 300, outF = 260   // more than one block in each direction
        let x = randomFloats(rows * inF, seed: 4)
        let bits: [UInt16] = randomFloats(outF * inF, seed: 5).map { v in
            format == .bf16 ? UInt16(v.bitPattern >> 16) : Float16(v).bitPattern
        }
        var decoded = [Float](repeating: 0, count: bits.count)
        bits.withUnsafeBytes { format.decode($0.baseAddress!, count: bits.count, into: &decoded) }
        var bitsT = [UInt16](repeating: 0, count: bits.count)
        for o in 0..<outF { for i in 0..<inF { bitsT[i * outF + o] = bits[o * inF + i] } }
        var dense = [Float](repeating: 0, count: rows * outF)
        linear(x, rows: rows, inFeatures: inF, weight: decoded, layout: .outIn, outFeatures: outF, bias: nil, into: &dense)
        let reference = ProductReference(x: x, w: decoded, bias: nil, rows: rows, inFeatures: inF, outFeatures: outF)
        let bounds = reference.bounds(results: 2)
        var serial: [[Float]] = []
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
            if serial.isEmpty { serial = [half, halfT] } else {
                #expect([half, halfT].map { $0.map(\.bitPattern) } == serial.map { $0.map(\.bitPattern) }, "3 threads differ from 1")
            }
            // Blocking changes the float32 accumulation order: both are within γ_K·Σ|x·w| of the exact sum.
            for (name, y) in [("out-in", half), ("in-out", halfT)] {
                let worst = Tolerance.worstRatio(y.map(Double.init), dense.map(Double.init), bounds: bounds)
                #expect(worst.ratio <= 1, "\(compute) \(name): |Δ| = \(worst.difference) is \(worst.ratio)× the bound 2·γ_K·Σ|x·w|")
            }
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
