// The roofline's arithmetic (issue 26): bounds from a ceiling and a bandwidth, by hand; and that its
// measurements run and give positive rates (their values are the machine's, never checked here).
import Testing
import TensorCore

@Suite("roofline")
struct RooflineTests {
    @Test("bound = max(FLOPs / ceiling, bytes / bandwidth); the issue's job formula; a pass's bound")
    func bounds() {
        let r = Roofline(ceilingFLOPs: 800e9, bandwidth: 40e9)
        #expect(r.bound(flops: 1.6e12, bytes: 40e9) == 2.0)          // compute 2 s, memory 1 s
        #expect(r.bound(flops: 8e11, bytes: 120e9) == 3.0)           // compute 1 s, memory 3 s
        // Issue 26: 651 prompt tokens × 2 × 6.48e9 FLOPs + 19 weight passes of 13.5 GB.
        let job = r.bound(promptTokens: 651, decodeSteps: 19, weightBytes: 13_500_000_000, flopsPerToken: 2 * 6.48e9)
        #expect(abs(job - (651 * 2 * 6.48e9 / 800e9 + 19 * 13.5e9 / 40e9)) < 1e-9)
        // A 16-row decoding step of a 7B model: memory-bound (0.3375 s to read, 0.26 s to compute).
        #expect(r.passBound(tokens: 16, weightBytes: 13_500_000_000, flopsPerToken: 2 * 6.48e9) == 13.5e9 / 40e9)
    }

    @Test("measurements run: positive ceilings (tiled and whole-matrix) and bandwidth, fp32 and bf16 where available")
    func measures() {
        let bytes = [UInt8](repeating: 3, count: 1 << 20)
        bytes.withUnsafeBytes { buf in
            let fp32 = Roofline.measure(k: 64, n: 256, rows: 16, compute: ComputeContext(threads: 2), weights: [buf], runs: 1)
            #expect(fp32.ceilingFLOPs > 0 && fp32.bandwidth > 0 && fp32.bandwidth.isFinite)
            #expect(fp32.ceilingFLOPs == max(fp32.tiledFLOPs!, fp32.libraryFLOPs!))
            if bf16Available {
                let bf16 = Roofline.measure(k: 64, n: 256, rows: 16, compute: ComputeContext(threads: 2, precision: .bf16), weights: [buf], runs: 1)
                #expect(bf16.ceilingFLOPs > 0)
            }
        }
        #expect(Roofline.measureBandwidth([], compute: .serial) == .infinity)
    }

    @Test("the stream read depends on every byte and on nothing past the end")
    func streamReadSeesEveryByte() {
        var a = [UInt8](repeating: 0, count: 1000)
        let h0 = a.withUnsafeBytes { streamRead($0.baseAddress!, count: 999) }
        for i in [0, 255, 256, 998] {
            a[i] = 1
            #expect(a.withUnsafeBytes { streamRead($0.baseAddress!, count: 999) } != h0, "byte \(i)")
            a[i] = 0
        }
        a[999] = 7
        #expect(a.withUnsafeBytes { streamRead($0.baseAddress!, count: 999) } == h0)
    }
}
