// Rotary position embeddings in the Hugging Face "rotate_half" convention:
// for the first `dims` channels of a head, pair channel i with i + dims/2 and rotate by
// angle = position · inv_freq[i] (transformers modeling_llama.apply_rotary_pos_emb / rotate_half).
import Foundation

/// Precomputed inverse frequencies for one model's rotary embedding.
public struct RotaryTable: Sendable {
    public let dims: Int
    /// inv_freq[i] for i in 0..<dims/2, as float32 like transformers computes them.
    public let invFreq: [Float]
    /// cos and sin are multiplied by this (LongRoPE's attention factor; 1 otherwise).
    public let attentionFactor: Float

    /// - Parameters:
    ///   - dims: rotated channels per head (even).
    ///   - theta: base wavelength (rope_theta).
    ///   - invFreqTransform: frequency scaling applied to the default table (linear, llama3, ...).
    public init(dims: Int, theta: Double, attentionFactor: Float = 1, transform: ([Double]) -> [Double] = { $0 }) {
        self.dims = dims
        self.attentionFactor = attentionFactor
        // inv_freq = 1 / theta^(2i/dims)   (transformers _compute_default_rope_parameters)
        let base = (0..<(dims / 2)).map { i -> Double in
            let exponent = Double(Float(2 * i) / Float(dims))
            return 1.0 / pow(theta, exponent)
        }
        self.invFreq = transform(base).map { Float($0) }
    }

    /// cos and sin of every rotated pair at `position` (dims/2 values each).
    @inline(__always)
    public func angles(position: Int, cos: UnsafeMutablePointer<Float>, sin: UnsafeMutablePointer<Float>) {
        let p = Float(position)
        for i in 0..<(dims / 2) {
            let angle = p * invFreq[i]   // float32 product, as torch computes freqs
            cos[i] = Foundation.cos(angle) * attentionFactor
            sin[i] = Foundation.sin(angle) * attentionFactor
        }
    }

    /// Rotates the first `dims` channels of one head vector by angles from `angles(position:cos:sin:)`.
    @inline(__always)
    public func rotate(_ v: UnsafeMutablePointer<Float>, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
        let half = dims / 2
        for i in 0..<half {
            let a = v[i], b = v[i + half]
            v[i] = a * cos[i] - b * sin[i]
            v[i + half] = b * cos[i] + a * sin[i]
        }
    }

    /// Rotates `dims` channels of each of `heads` vectors of one position, laid out with `stride`
    /// between heads, starting at x.
    @inline(__always)
    public func apply(_ x: UnsafeMutablePointer<Float>, heads: Int, stride: Int, position: Int,
                      cos: UnsafeMutablePointer<Float>, sin: UnsafeMutablePointer<Float>) {
        guard dims >= 2 else { return }
        angles(position: position, cos: cos, sin: sin)
        for h in 0..<heads { rotate(x + h * stride, cos: cos, sin: sin) }
    }
}
