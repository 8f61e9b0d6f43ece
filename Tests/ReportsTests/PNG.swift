// A minimal PNG reader for the screenshot test: zlib inflate (RFC 1950/1951: stored, fixed and
// dynamic Huffman blocks) and PNG scanline unfiltering (filters 0-4) for 8-bit RGB / RGBA images,
// enough to count non-white pixels in Chromium's screenshots. Test code only; throws on anything
// else rather than guessing.
import Foundation

struct PNGError: Error, CustomStringConvertible { let description: String }

struct BitReader {
    let data: [UInt8]
    var pos = 0, bit = 0

    mutating func bits(_ n: Int) throws -> Int {
        var v = 0
        for i in 0..<n {
            guard pos < data.count else { throw PNGError(description: "inflate: out of data") }
            v |= Int((data[pos] >> UInt8(bit)) & 1) << i
            bit += 1
            if bit == 8 { bit = 0; pos += 1 }
        }
        return v
    }

    mutating func alignByte() { if bit != 0 { bit = 0; pos += 1 } }
}

/// Canonical Huffman decoding table: code lengths → (count per length, symbols in code order).
struct Huffman {
    var counts = [Int](repeating: 0, count: 16)
    var symbols: [Int] = []

    init(lengths: [Int]) {
        for l in lengths { counts[l] += 1 }
        counts[0] = 0
        var offs = [Int](repeating: 0, count: 16)
        for i in 1..<16 { offs[i] = offs[i - 1] + counts[i - 1] }
        symbols = [Int](repeating: 0, count: lengths.count)
        for (s, l) in lengths.enumerated() where l > 0 { symbols[offs[l]] = s; offs[l] += 1 }
    }

    func decode(_ r: inout BitReader) throws -> Int {
        var code = 0, first = 0, index = 0
        for len in 1..<16 {
            code |= try r.bits(1)
            let count = counts[len]
            if code - count < first { return symbols[index + (code - first)] }
            index += count; first += count; first <<= 1; code <<= 1
        }
        throw PNGError(description: "inflate: bad Huffman code")
    }
}

func inflate(_ zlib: [UInt8]) throws -> [UInt8] {
    guard zlib.count > 2, zlib[0] & 0x0F == 8 else { throw PNGError(description: "zlib: not deflate") }
    var r = BitReader(data: Array(zlib.dropFirst(2)))
    var out: [UInt8] = []
    let lBase = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
    let lExtra = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    let dBase = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
    let dExtra = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]
    var last = 0
    while last == 0 {
        last = try r.bits(1)
        let type = try r.bits(2)
        if type == 0 {
            r.alignByte()
            guard r.pos + 4 <= r.data.count else { throw PNGError(description: "inflate: short stored block") }
            let len = Int(r.data[r.pos]) | Int(r.data[r.pos + 1]) << 8
            r.pos += 4
            guard r.pos + len <= r.data.count else { throw PNGError(description: "inflate: short stored block") }
            out += r.data[r.pos..<(r.pos + len)]
            r.pos += len
            continue
        }
        let lit: Huffman, dist: Huffman
        if type == 1 {
            lit = Huffman(lengths: (0..<288).map { $0 < 144 ? 8 : $0 < 256 ? 9 : $0 < 280 ? 7 : 8 })
            dist = Huffman(lengths: [Int](repeating: 5, count: 30))
        } else if type == 2 {
            let hlit = try r.bits(5) + 257, hdist = try r.bits(5) + 1, hclen = try r.bits(4) + 4
            let order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]
            var cl = [Int](repeating: 0, count: 19)
            for i in 0..<hclen { cl[order[i]] = try r.bits(3) }
            let clh = Huffman(lengths: cl)
            var lengths: [Int] = []
            while lengths.count < hlit + hdist {
                let sym = try clh.decode(&r)
                switch sym {
                case 0...15: lengths.append(sym)
                case 16:
                    guard let prev = lengths.last else { throw PNGError(description: "inflate: repeat with no length") }
                    lengths += [Int](repeating: prev, count: 3 + (try r.bits(2)))
                case 17: lengths += [Int](repeating: 0, count: 3 + (try r.bits(3)))
                default: lengths += [Int](repeating: 0, count: 11 + (try r.bits(7)))
                }
            }
            lit = Huffman(lengths: Array(lengths[0..<hlit]))
            dist = Huffman(lengths: Array(lengths[hlit..<(hlit + hdist)]))
        } else {
            throw PNGError(description: "inflate: bad block type")
        }
        while true {
            let sym = try lit.decode(&r)
            if sym < 256 { out.append(UInt8(sym)); continue }
            if sym == 256 { break }
            let li = sym - 257
            guard li < lBase.count else { throw PNGError(description: "inflate: bad length") }
            let len = lBase[li] + (try r.bits(lExtra[li]))
            let di = try dist.decode(&r)
            guard di < dBase.count else { throw PNGError(description: "inflate: bad distance") }
            let d = dBase[di] + (try r.bits(dExtra[di]))
            guard d <= out.count else { throw PNGError(description: "inflate: distance too far") }
            for _ in 0..<len { out.append(out[out.count - d]) }
        }
    }
    return out
}

/// An 8-bit RGB(A) image.
struct RGBImage {
    let width: Int, height: Int, channels: Int
    let pixels: [UInt8]

    init(png url: URL) throws {
        let bytes = [UInt8](try Data(contentsOf: url))
        guard bytes.count > 8, bytes[0..<8] == [137, 80, 78, 71, 13, 10, 26, 10] else { throw PNGError(description: "not a PNG") }
        var pos = 8, idat: [UInt8] = []
        var w = 0, h = 0, colorType = -1, depth = 0, interlace = 0
        func be32(_ i: Int) -> Int { Int(bytes[i]) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3]) }
        while pos + 8 <= bytes.count {
            let len = be32(pos)
            let type = String(decoding: bytes[(pos + 4)..<(pos + 8)], as: UTF8.self)
            guard pos + 12 + len <= bytes.count else { throw PNGError(description: "PNG: truncated chunk \(type)") }
            let body = Array(bytes[(pos + 8)..<(pos + 8 + len)])
            if type == "IHDR" {
                w = be32(pos + 8); h = be32(pos + 12); depth = Int(body[8]); colorType = Int(body[9]); interlace = Int(body[12])
            } else if type == "IDAT" {
                idat += body
            } else if type == "IEND" { break }
            pos += 12 + len
        }
        guard depth == 8, colorType == 2 || colorType == 6, interlace == 0 else {
            throw PNGError(description: "PNG: only 8-bit RGB/RGBA, non-interlaced (depth \(depth), colour type \(colorType))")
        }
        let ch = colorType == 6 ? 4 : 3
        let raw = try inflate(idat)
        let stride = w * ch
        guard raw.count >= h * (stride + 1) else { throw PNGError(description: "PNG: short image data") }
        var px = [UInt8](repeating: 0, count: w * h * ch)
        for y in 0..<h {
            let filter = raw[y * (stride + 1)]
            for x in 0..<stride {
                let v = Int(raw[y * (stride + 1) + 1 + x])
                let a = x >= ch ? Int(px[y * stride + x - ch]) : 0
                let b = y > 0 ? Int(px[(y - 1) * stride + x]) : 0
                let c = (x >= ch && y > 0) ? Int(px[(y - 1) * stride + x - ch]) : 0
                let pred: Int
                switch filter {
                case 0: pred = 0
                case 1: pred = a
                case 2: pred = b
                case 3: pred = (a + b) / 2
                case 4:
                    let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                    pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c
                default: throw PNGError(description: "PNG: bad filter \(filter)")
                }
                px[y * stride + x] = UInt8((v + pred) & 255)
            }
        }
        width = w; height = h; channels = ch; pixels = px
    }

    /// Fraction of pixels that are not (near) white.
    var nonWhiteFraction: Double {
        var n = 0
        for i in stride(from: 0, to: pixels.count, by: channels) where pixels[i] < 240 || pixels[i + 1] < 240 || pixels[i + 2] < 240 { n += 1 }
        return Double(n) / Double(max(1, width * height))
    }

    /// Number of distinct colours (quantised to 5 bits per channel).
    var colourCount: Int {
        var seen = Set<Int>()
        for i in stride(from: 0, to: pixels.count, by: channels) {
            seen.insert(Int(pixels[i] >> 3) << 10 | Int(pixels[i + 1] >> 3) << 5 | Int(pixels[i + 2] >> 3))
        }
        return seen.count
    }
}
