/// A piece of prompt text after special tokens are split out: raw text (a byte range) or a token.
enum TextFragment: Equatable {
    case text(Range<Int>)
    case token(Int32)
}

/// Finds special-token strings (`<|im_start|>`, `<start_of_turn>`, ...) in prompt text.
///
/// Two semantics exist and both are kept exactly:
/// * `.longestTokenFirst` is llama.cpp's `tokenizer_st_partition`: tokens are taken in order of
///   decreasing length, and each claims all its leftmost non-overlapping occurrences in the text
///   not yet claimed by a longer one.
/// * `.leftmostLongest` is Hugging Face's added-vocabulary split: scanning left to right, at each
///   position the longest token that starts there wins.
/// Both are computed from one scan with a byte trie of the token strings, so the cost does not grow
/// with the number of special tokens (Gemma has over six thousand).
struct SpecialTokenMatcher: Sendable {
    enum Semantics: Sendable { case longestTokenFirst, leftmostLongest }

    struct Entry: Sendable {
        var id: Int32
        var bytes: [UInt8]
        /// Matched even when special-token parsing is off (user-defined tokens).
        var alwaysParsed: Bool
    }

    private struct Node: Sendable {
        var children: [(byte: UInt8, node: Int32)] = []
        var entry: Int32 = -1
    }

    private let entries: [Entry]
    private var nodes: [Node] = [Node()]
    private var startsToken = [Bool](repeating: false, count: 256)
    let semantics: Semantics

    /// Builds a matcher. For `.longestTokenFirst`, `entries` must be in priority order (longest
    /// first); empty strings are ignored.
    init(entries: [Entry], semantics: Semantics) {
        self.entries = entries
        self.semantics = semantics
        for (index, entry) in entries.enumerated() where !entry.bytes.isEmpty {
            var node = 0
            for byte in entry.bytes {
                if let child = nodes[node].children.first(where: { $0.byte == byte }) {
                    node = Int(child.node)
                } else {
                    nodes.append(Node())
                    nodes[node].children.append((byte, Int32(nodes.count - 1)))
                    node = nodes.count - 1
                }
            }
            // A duplicate string keeps the first (higher-priority) entry.
            if nodes[node].entry < 0 { nodes[node].entry = Int32(index) }
            startsToken[Int(entry.bytes[0])] = true
        }
    }

    var isEmpty: Bool { entries.isEmpty }

    /// Splits `bytes` into text and token fragments.
    func partition(_ bytes: UnsafeBufferPointer<UInt8>, parseSpecial: Bool) -> [TextFragment] {
        let count = bytes.count
        if count == 0 { return [] }
        // Every (position, entry) where a usable token string occurs.
        var occurrences: [(entry: Int32, position: Int32)] = []
        var position = 0
        while position < count {
            if startsToken[Int(bytes[position])] {
                var node = 0
                var offset = position
                var longest: (entry: Int32, position: Int32)? = nil
                while offset < count,
                      let child = nodes[node].children.first(where: { $0.byte == bytes[offset] }) {
                    node = Int(child.node)
                    offset += 1
                    let entry = nodes[node].entry
                    if entry >= 0 && (parseSpecial || entries[Int(entry)].alwaysParsed) {
                        if semantics == .longestTokenFirst {
                            occurrences.append((entry, Int32(position)))
                        } else {
                            longest = (entry, Int32(position))
                        }
                    }
                }
                if semantics == .leftmostLongest, let match = longest {
                    occurrences.append(match)
                    position += entries[Int(match.entry)].bytes.count
                    continue
                }
            }
            position += 1
        }
        if occurrences.isEmpty { return [.text(0..<count)] }

        var accepted: [(start: Int, end: Int, id: Int32)] = []
        if semantics == .leftmostLongest {
            accepted = occurrences.map { (Int($0.position), Int($0.position) + entries[Int($0.entry)].bytes.count, entries[Int($0.entry)].id) }
        } else {
            // Priority order, then left to right: a token claims an occurrence if no
            // higher-priority token (or its own previous occurrence) already covers any byte.
            occurrences.sort { $0.entry != $1.entry ? $0.entry < $1.entry : $0.position < $1.position }
            var claimed = [Bool](repeating: false, count: count)
            for occurrence in occurrences {
                let start = Int(occurrence.position)
                let end = start + entries[Int(occurrence.entry)].bytes.count
                var free = true
                for index in start..<end where claimed[index] { free = false; break }
                guard free else { continue }
                for index in start..<end { claimed[index] = true }
                accepted.append((start, end, entries[Int(occurrence.entry)].id))
            }
            accepted.sort { $0.start < $1.start }
        }
        var fragments: [TextFragment] = []
        var cursor = 0
        for match in accepted {
            if match.start > cursor { fragments.append(.text(cursor..<match.start)) }
            fragments.append(.token(match.id))
            cursor = match.end
        }
        if cursor < count { fragments.append(.text(cursor..<count)) }
        return fragments
    }
}
