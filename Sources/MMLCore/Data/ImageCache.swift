import Foundation

/// Decoded, resized images of a dataset, each decoded at most once: an in-memory slab of
/// `side x side x channels` bytes per item, optionally backed by a binary cache file that is memory-mapped.
///
/// Cache file: "MMLIMGC1", fingerprint (UInt64), side, channels (UInt32 each), item count (UInt64), then the
/// items in dataset order (class-major). The fingerprint hashes the dataset name, every item path with its file
/// size and modification time, side and channels, so a changed source invalidates the file. It is written to a
/// temporary name and renamed.
public final class ImageCache: @unchecked Sendable {
    public let dataset: any FewShotDataset
    /// The side every image is resized to.
    public let side: Int
    /// Channels stored (1 or 3).
    public let channels: Int
    /// The filter images are resized with.
    public let filter: ResizeFilter
    /// First flat index of each class's items.
    let offsets: [Int]
    let count: Int
    let itemBytes: Int
    private let slab: UnsafeMutablePointer<UInt8>
    private var filled: [Bool]
    private var mapped: (UnsafeMutableRawPointer, Int)?
    private var decodeCount = 0
    private let lock = NSLock()
    /// Serialises whole prefetches, so two callers never decode the same item (each prefetch is parallel inside).
    private let prefetchLock = NSLock()

    /// Creates the cache; when `file` holds a valid cache for this dataset and configuration it is mapped and no
    /// image is decoded again. Throws `MMLError(.invalidArgument)` for a bad side or channel count.
    public init(dataset: any FewShotDataset, side: Int, channels: Int, filter: ResizeFilter = .triangle,
                file: String? = nil) throws {
        guard side >= 1, side <= 4096, channels == 1 || channels == 3 else {
            throw MMLError(.invalidArgument, "image cache needs a side in 1...4096 and 1 or 3 channels, got side "
                           + "\(side), \(channels) channels")
        }
        // The slab holds every image of the split: refuse one larger than the machine before allocating it.
        let items = (0..<dataset.classCount).reduce(0.0) { $0 + Double(dataset.itemCount(ofClass: $1)) }
        let bytes = items * Double(side * side * channels), memory = MemoryEstimate.physicalMemory
        if bytes > memory {
            throw MMLError(.invalidArgument, "the image cache of \(dataset.name) needs \(Int(items)) images of "
                           + "\(side) x \(side) x \(channels) bytes = \(MemoryEstimate.format(bytes)), more than this "
                           + "machine's \(MemoryEstimate.format(memory)) of memory; use a smaller image size or fewer images")
        }
        self.dataset = dataset
        self.side = side
        self.channels = channels
        self.filter = filter
        var off: [Int] = [], n = 0
        for c in 0..<dataset.classCount { off.append(n); n += dataset.itemCount(ofClass: c) }
        offsets = off
        count = n
        itemBytes = side * side * channels
        if let file, let m = ImageCache.map(file: file, expect: ImageCache.fingerprint(dataset, side, channels, filter), count: n,
                                            itemBytes: itemBytes) {
            mapped = m
            slab = (m.0 + ImageCache.headerBytes).assumingMemoryBound(to: UInt8.self)
            filled = [Bool](repeating: true, count: n)
        } else {
            // Untouched pages of a large allocation cost nothing until written (the allocator maps them lazily).
            slab = UnsafeMutablePointer<UInt8>.allocate(capacity: max(n * itemBytes, 1))
            filled = [Bool](repeating: false, count: n)
        }
    }

    deinit {
        if let (p, len) = mapped { munmap(p, len) } else { slab.deallocate() }
    }

    /// The conventional cache file beside a dataset: `<root>/.mml-cache/<tag>-<side>x<side>x<channels>.bin`,
    /// where `tag` names the layout and split (e.g. "omniglot-vinyals-test").
    public static func defaultFile(root: String, tag: String, side: Int, channels: Int) -> String {
        let safe = String(tag.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
        return "\(root)/.mml-cache/\(safe)-\(side)x\(side)x\(channels).bin"
    }

    /// True when the images came from a valid cache file.
    public var isMapped: Bool { mapped != nil }
    /// How many source images this cache has decoded (not counting those read from a cache file; rotations of
    /// one file count once).
    public var decodes: Int { lock.lock(); defer { lock.unlock() }; return decodeCount }

    func flatIndex(_ r: ItemRef) -> Int { offsets[r.classIndex] + r.item }

    /// The image of `ref` at `side x side x channels`, decoding it on first use.
    public func image(_ ref: ItemRef) throws -> PixelImage {
        try prefetch([ref])
        let p = slab + flatIndex(ref) * itemBytes
        return PixelImage(width: side, height: side, channels: channels,
                          pixels: [UInt8](UnsafeBufferPointer(start: p, count: itemBytes)))
    }

    /// Gives read access to the cached bytes of `ref` (which must have been prefetched).
    func withBytes<R>(_ ref: ItemRef, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: slab + flatIndex(ref) * itemBytes, count: itemBytes))
    }

    /// Decodes the items of `refs` not yet cached, in parallel on all cores. Throws the first decoding error
    /// (an `MMLError` naming the file); the items that did decode stay cached. Safe to call from several threads.
    public func prefetch(_ refs: [ItemRef]) throws {
        prefetchLock.lock()
        defer { prefetchLock.unlock() }
        lock.lock()
        var seen = Set<Int>()
        let todo = refs.filter { let i = flatIndex($0); return !filled[i] && seen.insert(i).inserted }
        lock.unlock()
        if todo.isEmpty { return }
        // Items sharing a source file (rotations of one character) form a group decoded once, by one worker.
        var groupOf: [String: Int] = [:]
        var groups: [[ItemRef]] = []
        for r in todo {
            let key = dataset.itemPath(ofClass: r.classIndex, item: r.item)
            if let g = groupOf[key] { groups[g].append(r) } else { groupOf[key] = groups.count; groups.append([r]) }
        }
        let errors = ErrorBox()
        let body = { (k: Int) in
            let group = groups[k]
            do {
                let first = group[0]
                let img0 = try self.dataset.loadImage(ofClass: first.classIndex, item: first.item, channels: self.channels)
                let t0 = self.dataset.quarterTurns(ofClass: first.classIndex)
                for r in group {
                    let turn = self.dataset.quarterTurns(ofClass: r.classIndex) - t0
                    let img = ImageTransform.resized(img0.rotated(quarterTurns: turn), width: self.side, height: self.side,
                                                         filter: self.filter)
                    img.pixels.withUnsafeBufferPointer {
                        (self.slab + self.flatIndex(r) * self.itemBytes).update(from: $0.baseAddress!, count: self.itemBytes)
                    }
                }
                self.lock.lock()
                for r in group { self.filled[self.flatIndex(r)] = true }
                self.decodeCount += 1
                self.lock.unlock()
            } catch { errors.set(error) }
        }
        if groups.count == 1 { body(0) } else { DispatchQueue.concurrentPerform(iterations: groups.count, execute: body) }
        if let e = errors.error { throw e }
    }

    /// Decodes every item of the dataset.
    public func warmAll() throws {
        var all: [ItemRef] = []
        for c in 0..<dataset.classCount {
            for i in 0..<dataset.itemCount(ofClass: c) { all.append(ItemRef(classIndex: c, item: i)) }
        }
        try prefetch(all)
    }

    /// Decodes everything still missing and writes the cache file atomically.
    public func write(file: String) throws {
        try warmAll()
        var header = Data()
        header.append(contentsOf: Array("MMLIMGC1".utf8))
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { header.append(contentsOf: $0) } }
        put(ImageCache.fingerprint(dataset, side, channels, filter))
        put(UInt32(side))
        put(UInt32(channels))
        put(UInt64(count))
        var data = header
        data.append(UnsafeBufferPointer(start: slab, count: count * itemBytes))
        try AtomicFile.write(data, to: file)
    }

    static let headerBytes = 32

    /// FNV-1a over the dataset name, each item's path, file size and modification time, side and channels.
    /// A filter other than the triangle is hashed too (so older cache files stay valid).
    static func fingerprint(_ ds: any FewShotDataset, _ side: Int, _ channels: Int,
                            _ filter: ResizeFilter = .triangle) -> UInt64 {
        var h = FNV1a64()
        let separator: [UInt8] = [0xff]
        func eat(_ s: String) { h.add(s); separator.withUnsafeBytes { h.add(bytes: $0) } }
        eat(ds.name)
        eat("\(side)x\(channels)")
        if filter != .triangle { eat("filter:\(filter.rawValue)") }
        for c in 0..<ds.classCount {
            eat(ds.classNames[c])
            for i in 0..<ds.itemCount(ofClass: c) {
                let p = ds.itemPath(ofClass: c, item: i)
                eat(p)
                var st = stat()
                if stat(p, &st) == 0 { eat("\(st.st_size):\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)") }
            }
        }
        return h.value
    }

    static func map(file: String, expect: UInt64, count: Int, itemBytes: Int) -> (UnsafeMutableRawPointer, Int)? {
        let fd = open(file, O_RDONLY)
        if fd < 0 { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, Int(st.st_size) == headerBytes + count * itemBytes else { return nil }
        guard let p = mmap(nil, Int(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else { return nil }
        let magic = String(decoding: UnsafeRawBufferPointer(start: p, count: 8), as: UTF8.self)
        let fp = p.loadUnaligned(fromByteOffset: 8, as: UInt64.self).littleEndian
        let n = p.loadUnaligned(fromByteOffset: 24, as: UInt64.self).littleEndian
        guard magic == "MMLIMGC1", fp == expect, n == UInt64(count) else {
            munmap(p, Int(st.st_size))
            return nil
        }
        return (p, Int(st.st_size))
    }
}

/// The first error thrown by any of several parallel workers.
final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var error: Error?
    func set(_ e: Error) { lock.lock(); if error == nil { error = e }; lock.unlock() }
}
