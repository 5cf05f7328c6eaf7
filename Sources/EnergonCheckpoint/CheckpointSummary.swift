/// The human-readable report `energon inspect` prints: format, architecture, hyperparameters,
/// tokenizer summary, chat template, metadata (long arrays summarised), tensor table and totals.
public enum CheckpointSummary {
    /// Renders the report for `checkpoint`.
    /// - Parameters:
    ///   - includeTensors: list every tensor (otherwise only the totals).
    ///   - includeTemplate: print the chat template text (otherwise only its length).
    public static func render(_ checkpoint: ModelCheckpoint, includeTensors: Bool = true, includeTemplate: Bool = true) -> String {
        var lines: [String] = []
        let configuration = checkpoint.configuration
        lines.append("Model: \(checkpoint.path)")
        if let gguf = checkpoint.gguf {
            lines.append("Format: GGUF version \(gguf.version), alignment \(gguf.alignment), data at byte \(gguf.dataOffset), file \(formatBytes(gguf.mapping.count))")
        } else if let folder = checkpoint.folder {
            lines.append("Format: Hugging Face folder, \(folder.files.count) safetensors file(s)")
        }
        let family = configuration.family.map { $0.rawValue } ?? "unknown to Energon"
        let classes = configuration.architectures.isEmpty ? "" : " (\(configuration.architectures.joined(separator: ", ")))"
        lines.append("Architecture: \(configuration.modelType)\(classes), tensor-name family: \(family)")
        lines.append("")
        lines.append("Hyperparameters:")
        var rows: [(String, String)] = [
            ("hidden size", "\(configuration.hiddenSize)"),
            ("feed-forward size", "\(configuration.intermediateSize)"),
            ("layers", "\(configuration.layerCount)"),
            ("attention heads", "\(configuration.attentionHeadCount)"),
            ("key/value heads", "\(configuration.keyValueHeadCount)"),
            ("head dimension", "\(configuration.headDimension)"),
            ("vocabulary size", "\(configuration.vocabularySize)"),
            ("norm epsilon", "\(configuration.normEpsilon)"),
            ("tied embeddings", "\(configuration.tieWordEmbeddings)"),
        ]
        if let theta = configuration.ropeTheta { rows.append(("rope theta", "\(theta)")) }
        if let scaling = configuration.ropeScaling {
            rows.append(("rope scaling", "\(scaling.type)" + (scaling.factor.map { " x\($0)" } ?? "")))
        }
        if let context = configuration.maxPositionEmbeddings { rows.append(("context length", "\(context)")) }
        if let window = configuration.slidingWindow { rows.append(("sliding window", "\(window)")) }
        if let activation = configuration.hiddenActivation { rows.append(("activation", activation)) }
        if let bos = configuration.bosTokenID { rows.append(("bos token id", "\(bos)")) }
        if !configuration.eosTokenIDs.isEmpty { rows.append(("eos token ids", configuration.eosTokenIDs.map(String.init).joined(separator: " "))) }
        lines += table(rows.map { [$0.0, $0.1] }, indent: "  ")

        let tokenizer = tokenizerSummary(checkpoint)
        if !tokenizer.isEmpty {
            lines.append("")
            lines.append("Tokenizer:")
            lines += tokenizer.map { "  " + $0 }
        }
        if let template = chatTemplate(checkpoint) {
            lines.append("")
            lines.append("Chat template (\(template.count) characters):")
            if includeTemplate {
                lines += template.split(separator: "\n", omittingEmptySubsequences: false).map { "  | " + $0 }
            }
        }
        if let gguf = checkpoint.gguf {
            lines.append("")
            lines.append("Metadata (\(gguf.metadataOrder.count) keys):")
            var metadataRows: [[String]] = []
            for key in gguf.metadataOrder {
                // invariant: metadataOrder lists exactly the keys of metadata.
                let value = gguf.metadata[key]!
                let type = typeDescription(value)
                let shown = key == "tokenizer.chat_template" ? "(\(value.string?.count ?? 0) characters, shown above)" : value.summary(limit: 6)
                metadataRows.append([key, type, shown])
            }
            lines += table(metadataRows, indent: "  ")
        } else if let folder = checkpoint.folder {
            let metadata = folder.files.first?.metadata ?? [:]
            if !metadata.isEmpty {
                lines.append("")
                lines.append("Safetensors metadata:")
                lines += table(metadata.keys.sorted().map { [$0, metadata[$0] ?? ""] }, indent: "  ")
            }
        }
        let tensors = checkpoint.store.storedTensors
        if includeTensors {
            lines.append("")
            lines.append("Tensors (\(tensors.count)):")
            // For HF folders, the GGUF name model code asks for (through the family's table).
            let ggufNames: [String: String]? = checkpoint.format == .huggingFace
                ? configuration.family.map { TensorNameMap.ggufNames(family: $0, layerCount: configuration.layerCount) } : nil
            var tensorRows: [[String]] = [["name", "type", "shape", "bytes"] + (ggufNames == nil ? [] : ["gguf name"])]
            for tensor in tensors {
                var row = [tensor.name, tensor.typeName, "[" + tensor.shape.map(String.init).joined(separator: ", ") + "]", "\(tensor.byteCount)"]
                if let ggufNames { row.append(ggufNames[tensor.name] ?? "-") }
                tensorRows.append(row)
            }
            lines += table(tensorRows, indent: "  ", rightAligned: [3])
        }
        lines.append("")
        var byType: [String: (count: Int, elements: Int, bytes: Int)] = [:]
        var elements = 0
        var bytes = 0
        for tensor in tensors {
            let count = tensor.shape.reduce(1, *)
            elements += count
            bytes += tensor.byteCount
            let previous = byType[tensor.typeName] ?? (0, 0, 0)
            byType[tensor.typeName] = (previous.count + 1, previous.elements + count, previous.bytes + tensor.byteCount)
        }
        lines.append("Totals: \(tensors.count) tensors, \(elements) parameters (\(formatCount(elements))), \(formatBytes(bytes)) of weights")
        for (type, entry) in byType.sorted(by: { $0.value.bytes > $1.value.bytes }) {
            lines.append("  \(type): \(entry.count) tensors, \(formatCount(entry.elements)) parameters, \(formatBytes(entry.bytes))")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Tokenizer facts from GGUF metadata or the folder's `tokenizer.json`/`tokenizer_config.json`.
    static func tokenizerSummary(_ checkpoint: ModelCheckpoint) -> [String] {
        var lines: [String] = []
        if let gguf = checkpoint.gguf {
            let metadata = gguf.metadata
            guard let model = metadata["tokenizer.ggml.model"]?.string else { return [] }
            let tokens = metadata["tokenizer.ggml.tokens"]?.strings
            var first = "model \(model)"
            if let pre = metadata["tokenizer.ggml.pre"]?.string { first += ", pre-tokenizer \(pre)" }
            if let tokens { first += ", \(tokens.count) tokens" }
            if let merges = metadata["tokenizer.ggml.merges"]?.array { first += ", \(merges.count) merges" }
            lines.append(first)
            var special: [String] = []
            for role in ["bos", "eos", "eot", "eom", "unknown", "padding", "separator", "mask"] {
                guard let id = metadata["tokenizer.ggml.\(role)_token_id"]?.int else { continue }
                let text = tokens.flatMap { id >= 0 && id < $0.count ? $0[id] : nil }.map { " " + GGUFValue.quote($0, limit: 40) } ?? ""
                special.append("\(role) \(id)\(text)")
            }
            if !special.isEmpty { lines.append("special tokens: " + special.joined(separator: ", ")) }
            var flags: [String] = []
            for flag in ["add_bos_token", "add_eos_token", "add_space_prefix"] {
                if let value = metadata["tokenizer.ggml.\(flag)"]?.bool { flags.append("\(flag) \(value)") }
            }
            if !flags.isEmpty { lines.append(flags.joined(separator: ", ")) }
            if let types = metadata["tokenizer.ggml.token_type"]?.ints {
                let control = types.filter { $0 == 3 }.count
                let user = types.filter { $0 == 4 }.count
                let byte = types.filter { $0 == 6 }.count
                lines.append("token types: \(control) control, \(user) user-defined, \(byte) byte")
            }
            return lines
        }
        let folder = checkpoint.path
        if let json = try? FileSystem.readJSON("\(folder)/tokenizer.json") {
            var first = "tokenizer.json: model \(json["model"]?["type"]?.string ?? "?")"
            if let vocabulary = json["model"]?["vocab"] {
                let count = vocabulary.object?.count ?? vocabulary.array?.count ?? 0
                first += ", \(count) tokens"
            }
            if let merges = json["model"]?["merges"]?.array { first += ", \(merges.count) merges" }
            if let added = json["added_tokens"]?.array { first += ", \(added.count) added tokens" }
            if let pre = json["pre_tokenizer"]?["type"]?.string { first += ", pre-tokenizer \(pre)" }
            lines.append(first)
        }
        if let config = try? FileSystem.readJSON("\(folder)/tokenizer_config.json") {
            var special: [String] = []
            for key in ["bos_token", "eos_token", "unk_token", "pad_token"] {
                let value = config[key]
                if let text = value?.string ?? value?["content"]?.string { special.append("\(key) \(GGUFValue.quote(text, limit: 40))") }
            }
            if !special.isEmpty { lines.append("special tokens: " + special.joined(separator: ", ")) }
        }
        return lines
    }

    /// The chat template: GGUF `tokenizer.chat_template`, or `chat_template.jinja` /
    /// `tokenizer_config.json`'s `chat_template` (a string, or the `default` of a named list).
    public static func chatTemplate(_ checkpoint: ModelCheckpoint) -> String? {
        if let gguf = checkpoint.gguf { return gguf.metadata["tokenizer.chat_template"]?.string }
        let jinja = "\(checkpoint.path)/chat_template.jinja"
        if FileSystem.isRegularFile(jinja), let mapping = try? FileMapping(path: jinja) {
            return String(decoding: mapping.bytes, as: UTF8.self)
        }
        guard let config = try? FileSystem.readJSON("\(checkpoint.path)/tokenizer_config.json") else { return nil }
        switch config["chat_template"] {
        case let .string(text)?: return text
        case let .array(templates)?:
            let named = templates.first { $0["name"]?.string == "default" } ?? templates.first
            return named?["template"]?.string
        default: return nil
        }
    }

    static func typeDescription(_ value: GGUFValue) -> String {
        guard case let .array(elements) = value else { return GGUFValue.typeName(value.typeID) ?? "?" }
        let element = elements.first.map { typeDescription($0) } ?? "?"
        return "[\(element)]"
    }

    /// Left-aligned columns (right-aligned for `rightAligned` indices) separated by two spaces.
    static func table(_ rows: [[String]], indent: String, rightAligned: Set<Int> = []) -> [String] {
        guard let columns = rows.map(\.count).max() else { return [] }
        var widths = [Int](repeating: 0, count: columns)
        for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
        return rows.map { row in
            var line = indent
            for (index, cell) in row.enumerated() {
                let padding = String(repeating: " ", count: widths[index] - cell.count)
                if index == row.count - 1 && !rightAligned.contains(index) {
                    line += cell
                } else {
                    line += rightAligned.contains(index) ? padding + cell : cell + padding
                }
                if index < row.count - 1 { line += "  " }
            }
            return line
        }
    }

    /// `1234567` -> `1.23M`.
    static func formatCount(_ count: Int) -> String {
        let value = Double(count)
        if value >= 1e9 { return rounded(value / 1e9) + "B" }
        if value >= 1e6 { return rounded(value / 1e6) + "M" }
        if value >= 1e3 { return rounded(value / 1e3) + "K" }
        return "\(count)"
    }

    /// Bytes with a binary unit: `1.50 MiB`.
    static func formatBytes(_ bytes: Int) -> String {
        let value = Double(bytes)
        let kibibyte = 1024.0
        if value >= kibibyte * kibibyte * kibibyte { return rounded(value / (kibibyte * kibibyte * kibibyte)) + " GiB" }
        if value >= kibibyte * kibibyte { return rounded(value / (kibibyte * kibibyte)) + " MiB" }
        if value >= kibibyte { return rounded(value / kibibyte) + " KiB" }
        return "\(bytes) B"
    }

    /// Two decimals without Foundation's formatting.
    static func rounded(_ value: Double) -> String {
        let hundredths = Int((value * 100).rounded())
        let fraction = hundredths % 100
        return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }
}
