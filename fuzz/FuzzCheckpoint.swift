// libFuzzer harness over the checkpoint parsers (GGUF, safetensors, JSON, config.json, WeightSource
// slicing). Not part of the package build: scripts/fuzz_checkpoint.sh compiles it together with the
// EnergonCheckpoint sources (and EnergonCore's DType/Tensor) with `-sanitize=fuzzer,address`.
// Any input must end in a typed error or a fully validated file whose every tensor can be read
// from first to last byte; a crash or an AddressSanitizer report is a finding.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCheckpoint(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let file = try? GGUFFile(bytes: bytes, name: "fuzz.gguf") {
        exercise(file)
    }
    if let file = try? SafetensorsFile(bytes: bytes, name: "fuzz.safetensors") {
        var checksum: UInt8 = 0
        for info in file.tensors where info.byteCount > 0 {
            if let raw = try? file.rawBytes(of: info.name) { checksum ^= raw[0] ^ raw[raw.count - 1] }
        }
        blackHole(checksum)
    }
    if let json = try? bytes.withUnsafeBytes({ try JSONValue.parse($0, path: "fuzz.json") }) {
        blackHole(json == .null ? 0 : 1)
        if let configuration = try? ModelConfiguration(json: json, path: "config.json") {
            blackHole(UInt8(truncatingIfNeeded: configuration.hiddenSize))
        }
    }
    return 0
}

func exercise(_ file: GGUFFile) {
    var checksum: UInt8 = 0
    for key in file.metadataOrder {
        checksum ^= UInt8(truncatingIfNeeded: file.metadata[key]?.summary(limit: 4).utf8.count ?? 0)
    }
    _ = try? ModelConfiguration(gguf: file)
    let source = WeightSource(gguf: file)
    for info in file.tensors {
        let tensor = file.tensor(info)
        if tensor.byteCount > 0 {
            checksum ^= tensor.data.load(fromByteOffset: 0, as: UInt8.self)
            checksum ^= tensor.data.load(fromByteOffset: tensor.byteCount - 1, as: UInt8.self)
        }
        for dimension in [0, max(0, info.shape.count - 1)] {
            if let part = try? source.tensor(info.name, shape: info.shape, shard: ShardSpec(dimension: dimension, rank: 1, count: 2)),
               part.byteCount > 0 {
                checksum ^= part.data.load(fromByteOffset: part.byteCount - 1, as: UInt8.self)
            }
        }
    }
    _ = try? source.finish()
    blackHole(checksum)
}

@inline(never)
func blackHole(_ value: UInt8) {
    if value == 0x5A && CommandLine.arguments.count == Int.max { print(value) }
}
