/// SentencePiece-style BPE over one piece of text (spaces already escaped as `▁`), as llama.cpp's
/// `llm_tokenizer_spm_session`: start from UTF-8 characters, repeatedly merge the adjacent pair
/// whose concatenation is the vocabulary token with the highest score (ties: leftmost), then emit
/// each symbol's token or, failing that, its bytes as `<0xNN>` tokens.
struct SentencePieceBPE: Sendable {
    /// UTF-8 token text -> id.
    let textTable: ByteStringTable
    let scores: [Float]
    /// Raw byte -> `<0xNN>` token (or the one-byte token), -1 if neither exists.
    let byteTokens: [Int32]

    private struct Symbol {
        var start: Int32
        var length: Int32
        var previous: Int32
        var next: Int32
    }

    private struct Candidate {
        var score: Float
        var left: Int32
        var right: Int32
        var size: Int32

        /// Heap order: higher score first, then leftmost.
        @inline(__always) func precedes(_ other: Candidate) -> Bool {
            score > other.score || (score == other.score && left < other.left)
        }
    }

    /// Appends the tokens of `text`.
    func encode(_ text: UnsafeBufferPointer<UInt8>, into output: inout [Int32]) {
        let count = text.count
        if count == 0 { return }
        var symbols: [Symbol] = []
        symbols.reserveCapacity(count)
        var offset = 0
        while offset < count {
            let lead = text[offset]
            let width = lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
            let length = min(width, count - offset)
            let index = Int32(symbols.count)
            offset += length
            symbols.append(Symbol(start: Int32(offset - length), length: Int32(length), previous: index - 1,
                                  next: offset == count ? -1 : index + 1))
        }
        var heap: [Candidate] = []
        heap.reserveCapacity(symbols.count)

        func tryAdd(_ left: Int32, _ right: Int32, _ heap: inout [Candidate]) {
            if left < 0 || right < 0 { return }
            let start = Int(symbols[Int(left)].start)
            let size = Int(symbols[Int(left)].length + symbols[Int(right)].length)
            guard let token = textTable.lookup(UnsafeBufferPointer(rebasing: text[start..<start + size])),
                  Int(token) < scores.count else { return }
            heap.append(Candidate(score: scores[Int(token)], left: left, right: right, size: Int32(size)))
            var child = heap.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                if !heap[child].precedes(heap[parent]) { break }
                heap.swapAt(parent, child)
                child = parent
            }
        }
        func pop(_ heap: inout [Candidate]) -> Candidate {
            let top = heap[0]
            let last = heap.removeLast()
            if !heap.isEmpty {
                heap[0] = last
                var parent = 0
                let size = heap.count
                while true {
                    let left = 2 * parent + 1
                    if left >= size { break }
                    var best = left
                    if left + 1 < size && heap[left + 1].precedes(heap[left]) { best = left + 1 }
                    if !heap[best].precedes(heap[parent]) { break }
                    heap.swapAt(parent, best)
                    parent = best
                }
            }
            return top
        }

        for index in 1..<symbols.count { tryAdd(Int32(index - 1), Int32(index), &heap) }
        while !heap.isEmpty {
            let candidate = pop(&heap)
            let left = Int(candidate.left)
            let right = Int(candidate.right)
            // Stale if either side was merged away or has changed size since it was queued.
            if symbols[left].length == 0 || symbols[right].length == 0
                || symbols[left].length + symbols[right].length != candidate.size {
                continue
            }
            symbols[left].length += symbols[right].length
            symbols[right].length = 0
            symbols[left].next = symbols[right].next
            if symbols[right].next >= 0 { symbols[Int(symbols[right].next)].previous = candidate.left }
            tryAdd(symbols[left].previous, candidate.left, &heap)
            tryAdd(candidate.left, symbols[left].next, &heap)
        }
        var index = 0
        while index >= 0 {
            let symbol = symbols[index]
            let start = Int(symbol.start)
            let piece = UnsafeBufferPointer(rebasing: text[start..<start + Int(symbol.length)])
            if let token = textTable.lookup(piece) {
                output.append(token)
            } else {
                for byte in piece where byteTokens[Int(byte)] >= 0 { output.append(byteTokens[Int(byte)]) }
            }
            index = Int(symbol.next)
        }
    }
}
