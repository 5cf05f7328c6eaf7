#if MPI
import EnergonCheckpoint
import EnergonCore
import EnergonDistributed

#if canImport(Glibc)
import Glibc
#endif

/// The layout of a tp × pp grid over the processes of an MPI job: world rank
/// `stage * tp + tensorRank`. World rank 0 is the controller (it tokenizes, samples and drives
/// the `ModelRunner`) and also the worker of stage 0, tensor rank 0; every other rank runs
/// `MPIStageWorker.run()`.
public final class MPIJob: @unchecked Sendable {
    /// This process's MPI world.
    public let world: MPIWorld
    /// The validated grid.
    public let grid: ParallelGrid
    /// Every process (batch descriptions, activations, logits travel here, tagged).
    public let worldGroup: MPIProcessGroup
    /// This process's tensor-parallel group (the ranks of its stage).
    public let tensorGroup: MPIProcessGroup
    /// This process's pipeline stage.
    public let stage: Int
    /// This process's tensor-parallel rank.
    public let tensorRank: Int
    /// Longest wait for a peer inside a forward pass, in seconds.
    public let timeout: Double

    /// Whether this process is the controller (world rank 0).
    public var isController: Bool { world.rank == 0 }

    /// Joins the job and creates the groups. Collective: every rank calls it with the same arguments.
    /// - Throws: `ParallelGridError` listing the grids that would work when the job's process
    ///   count is not tp × pp or the grid does not split the model.
    /// - Parameter weightBlocks: the block sizes of the row-parallel weights (see `ParallelGrid`).
    public init(configuration: DecoderConfiguration, tensorParallel: Int, pipelineStages: Int,
                layersPerStage: [Int]? = nil, weightBlocks: ParallelGrid.WeightBlocks = .unquantized,
                timeout: Double) throws {
        world = try MPIWorld.shared()
        guard world.size == tensorParallel * pipelineStages else {
            let layouts = MPIJob.validLayouts(configuration: configuration, processes: world.size, weightBlocks: weightBlocks)
            throw ParallelGridError.invalid(
                "mpirun started \(world.size) processes but --tp \(tensorParallel) × --pp \(pipelineStages) = "
                    + "\(tensorParallel * pipelineStages); with \(world.size) processes use "
                    + (layouts.isEmpty ? "another process count (no tp × pp grid fits this model)"
                                       : layouts.map { "--tp \($0.tp) --pp \($0.pp)" }.joined(separator: ", or ")))
        }
        grid = try ParallelGrid(configuration: configuration, tensorParallel: tensorParallel,
                                pipelineStages: pipelineStages, layersPerStage: layersPerStage, weightBlocks: weightBlocks)
        self.timeout = timeout
        stage = world.rank / tensorParallel
        tensorRank = world.rank % tensorParallel
        worldGroup = try world.worldGroup(timeout: timeout)
        tensorGroup = try world.split(color: stage, key: tensorRank, timeout: timeout)
    }

    /// The tp × pp grids of `processes` ranks this model accepts.
    public static func validLayouts(configuration: DecoderConfiguration, processes: Int,
                                    weightBlocks: ParallelGrid.WeightBlocks = .unquantized) -> [(tp: Int, pp: Int)] {
        ParallelGrid.validTensorParallelSizes(configuration, weightBlocks: weightBlocks).compactMap { tp in
            guard processes % tp == 0, processes / tp <= configuration.layerCount else { return nil }
            return (tp, processes / tp)
        }
    }

    /// How long a rank of `stage` waits for the previous stage's activations (stage `pp`: rank 0
    /// waiting for the logits). Upstream ranks wait for their own peers first, so the rank
    /// that reports a silent peer is the one next to it: each stage further down waits half a
    /// timeout longer. Every rank therefore exits within `(1 + pp / 2) × timeout`.
    func stageTimeout(stage: Int) -> Double { timeout * (1 + 0.5 * Double(stage)) }

    /// World rank of (stage, tensor rank).
    func worldRank(stage: Int, tensorRank: Int) -> Int { stage * grid.tensorParallel + tensorRank }

    /// This process's shard: the model for its stage and tensor rank, with its cache and buffers.
    func makeShard(configuration: DecoderConfiguration, weights: WeightSource, threads: Int, isa: ISA,
                   blockSize: Int, blockCount: Int, kvCacheType: DType) throws -> MPIShard {
        let parallel = ParallelContext(tensorGroup: tensorGroup, pipelineStage: stage, pipelineStages: grid.pipelineStages)
        let model = try MatMul.$preparationISA.withValue(isa) {
            try ModelRegistry.build(configuration: configuration, weights: weights, parallel: parallel,
                                    layers: grid.stageLayers[stage])
        }
        return MPIShard(model: model, parallel: parallel, context: ComputeContext(threads: threads, isa: isa),
                        blockSize: blockSize, blockCount: blockCount, kvCacheType: kvCacheType)
    }
}

/// Message tags on the world group.
enum MPITag {
    /// `[kind, payload bytes, block size, block count]` as Int64: the controller's command.
    static let command = 1
    /// The encoded `ForwardBatch` (Int32s).
    static let batch = 2
    /// A stage's packed `[tokens, hidden]` activations to the next stage's rank with the same tp index.
    static let activations = 3
    /// `[logit rows, vocabulary]` from the last stage's tensor rank 0 to the controller.
    static let logits = 4
}

/// What a command message asks of the workers.
enum MPICommand: Int64 {
    case forward = 1
    case shutdown = 2
}

/// One process's share of the model, and the state it keeps between forward passes.
final class MPIShard: @unchecked Sendable {
    let model: any DecoderModel
    let parallel: ParallelContext
    let context: ComputeContext
    let cache: KVCache
    let buffers = ActivationBuffers()
    let blockSize: Int
    let blockCount: Int
    /// Where the previous stage's activations are received (grow-only).
    private var incoming: [Float] = []
    /// Seconds inside `DecoderRuntime.forward` (compute and tensor-group waits).
    private(set) var computeSeconds = 0.0

    init(model: any DecoderModel, parallel: ParallelContext, context: ComputeContext, blockSize: Int, blockCount: Int,
         kvCacheType: DType) {
        self.model = model
        self.parallel = parallel
        self.context = context
        self.blockSize = blockSize
        self.blockCount = blockCount
        cache = KVCache(layers: model.layerRange.count, blockSize: blockSize, kvDimension: model.kvDimensionPerRank,
                        blockCount: blockCount, elementType: kvCacheType)
    }

    /// Runs this stage on `batch`: receives the previous stage's activations first (from the rank
    /// with the same tp index), sends this stage's to the next. Returns the logits on the last stage.
    func run(_ batch: ForwardBatch, job: MPIJob) throws -> UnsafeMutablePointer<Float>? {
        let width = model.configuration.hiddenSize
        let count = batch.totalTokens * width
        var logits: UnsafeMutablePointer<Float>?
        if job.stage > 0 {
            if incoming.count < count { incoming = [Float](repeating: 0, count: count) }
            let source = job.worldRank(stage: job.stage - 1, tensorRank: job.tensorRank)
            let bytes = try incoming.withUnsafeMutableBytes {
                try job.worldGroup.receive(into: $0, from: source, tag: MPITag.activations,
                                           timeout: job.stageTimeout(stage: job.stage))
            }
            guard bytes == count * 4 else {
                throw CommunicationError.invalidArgument(
                    "rank \(source) sent \(bytes) bytes of activations; \(count * 4) expected for \(batch.totalTokens) tokens")
            }
            let start = MPIRunner.now()
            logits = try incoming.withUnsafeBufferPointer { previous in
                try DecoderRuntime.forward(model, batch: batch, cache: cache, buffers: buffers, context: context,
                                           parallel: parallel, incoming: previous.baseAddress)
            }
            computeSeconds += MPIRunner.now() - start
        } else {
            let start = MPIRunner.now()
            logits = try DecoderRuntime.forward(model, batch: batch, cache: cache, buffers: buffers, context: context,
                                                parallel: parallel)
            computeSeconds += MPIRunner.now() - start
        }
        if !parallel.isLastStage {
            let hidden = buffers.buffer(.hidden, count: count)
            try job.worldGroup.send(UnsafeRawBufferPointer(start: hidden, count: count * 4),
                                    to: job.worldRank(stage: job.stage + 1, tensorRank: job.tensorRank),
                                    tag: MPITag.activations)
            // Messages past the eager limit (4 KiB in shared memory) move only while the sender
            // is inside MPI. A worker is (it goes straight back to polling for the next batch),
            // but rank 0 returns to the controller and may compute the next batch's stage 0:
            // without this wait, stage 1 would sit idle until then and the pipeline would
            // serialize.
            if job.isController { try job.worldGroup.flushSends() }
        }
        return logits
    }
}

/// The controller's `ModelRunner` over an MPI job: each batch's description goes to every other
/// rank, rank 0 runs stage 0 (tensor rank 0) itself, and the logits come back from the last
/// stage's tensor rank 0. A failed forward pass marks the runner failed (see
/// `MPIRunner.finish`), because the workers' state is then unknown.
///
/// With pp > 1 it is a non-blocking pipeline (`maxBatchesInFlight` batches of disjoint
/// sequences): `submit` returns once rank 0 has run stage 0 and sent the activations on, so the
/// later stages work on one batch while rank 0 computes the next; `wait` collects the logits in
/// submission order (MPI keeps the order of messages between two ranks with one tag, and every
/// rank runs its batches in arrival order). Sends copy their payload, so no buffer is reused
/// while a message is in flight.
public final class MPIRunner: PipelinedModelRunner, @unchecked Sendable {
    public let configuration: DecoderConfiguration
    public let blocks: BlockManager
    /// The job this runner drives.
    public let job: MPIJob
    public let maxBatchesInFlight: Int
    let shard: MPIShard
    /// Each slot's logits (valid until the slot is submitted again).
    private var logits: [[Float]]
    /// Submitted batches not yet collected, oldest first: slot, logit rows, and stage 0's own
    /// logits when rank 0 is also the last stage (pp = 1).
    private var pending: [(slot: Int, rows: Int, local: UnsafeMutablePointer<Float>?)] = []
    private var encoded: [Int32] = []
    /// Set once a forward pass has thrown: the job can only be aborted.
    public private(set) var failed = false
    /// Forward passes run so far.
    public private(set) var forwardCount = 0
    /// Seconds spent in `forward` so far.
    public private(set) var forwardSeconds = 0.0
    private var finished = false

    /// Builds the controller's shard (stage 0, tensor rank 0). Every worker rank must build its
    /// own `MPIStageWorker` with the same arguments.
    /// - Parameter batchesInFlight: batches the pipeline holds at once (default 1, blocking; at
    ///   pp = 1 always 1: rank 0 computes the only stage inside `submit`).
    public init(job: MPIJob, configuration: DecoderConfiguration, weights: WeightSource, threadsPerRank: Int,
                isa: ISA = .best, blockSize: Int, blockCount: Int, kvCacheType: DType = .f16,
                batchesInFlight: Int = 1) throws {
        precondition(job.isController, "MPIRunner runs on world rank 0")  // invariant: callers branch on isController
        self.job = job
        self.configuration = configuration
        maxBatchesInFlight = job.grid.pipelineStages == 1 ? 1 : max(1, batchesInFlight)
        logits = Array(repeating: [], count: maxBatchesInFlight)
        blocks = BlockManager(blockSize: blockSize, blockCount: blockCount)
        shard = try job.makeShard(configuration: configuration, weights: weights, threads: threadsPerRank, isa: isa,
                                  blockSize: blockSize, blockCount: blockCount, kvCacheType: kvCacheType)
    }

    /// Runs one batch through every stage (nothing else may be in flight).
    public func forward(_ batch: ForwardBatch) throws -> UnsafeMutablePointer<Float>? {
        precondition(pending.isEmpty, "forward with batches in flight")  // invariant: callers use submit/wait or forward
        try submit(batch, slot: 0)
        return try wait(slot: 0)
    }

    public func submit(_ batch: ForwardBatch, slot: Int) throws {
        precondition(slot >= 0 && slot < maxBatchesInFlight && !pending.contains { $0.slot == slot },
                     "slot \(slot) is busy or out of 0..<\(maxBatchesInFlight)")  // invariant: the controller's slots
        guard !failed else { throw CommunicationError.peerFailed(rank: 0, reason: "an earlier forward pass failed") }
        let start = MPIRunner.now()
        defer { forwardSeconds += MPIRunner.now() - start }
        do {
            MPIBatchCodec.encode(batch, into: &encoded)
            try sendCommand(.forward, payloadBytes: encoded.count * 4)
            try encoded.withUnsafeBytes { payload in
                for rank in 1..<job.world.size { try job.worldGroup.send(payload, to: rank, tag: MPITag.batch) }
            }
            let local = try shard.run(batch, job: job)
            pending.append((slot, batch.logitRows.count, job.grid.pipelineStages == 1 ? local : nil))
        } catch {
            failed = true
            throw error
        }
    }

    public func wait(slot: Int) throws -> UnsafeMutablePointer<Float>? {
        precondition(pending.first?.slot == slot, "wait(slot: \(slot)) out of submission order")  // invariant: the controller waits oldest first
        let (_, rows, local) = pending.removeFirst()
        let start = MPIRunner.now()
        defer {
            forwardCount += 1
            forwardSeconds += MPIRunner.now() - start
        }
        guard !failed else { throw CommunicationError.peerFailed(rank: 0, reason: "an earlier forward pass failed") }
        if job.grid.pipelineStages == 1 || rows == 0 { return local }
        let count = rows * configuration.vocabularySize
        if logits[slot].count < count { logits[slot] = [Float](repeating: 0, count: count) }
        let source = job.worldRank(stage: job.grid.pipelineStages - 1, tensorRank: 0)
        do {
            // Up to every batch in flight may still be ahead of this one in the later stages.
            let limit = job.timeout * Double(job.grid.pipelineStages + 1) * Double(maxBatchesInFlight)
            let bytes = try logits[slot].withUnsafeMutableBytes {
                try job.worldGroup.receive(into: $0, from: source, tag: MPITag.logits, timeout: limit)
            }
            guard bytes == count * 4 else {
                throw CommunicationError.invalidArgument("rank \(source) sent \(bytes) bytes of logits; \(count * 4) expected")
            }
        } catch {
            failed = true
            throw error
        }
        return logits[slot].withUnsafeMutableBufferPointer { $0.baseAddress }
    }

    /// Where rank 0's forward time went: the tensor-group waits (all-reduces and all-gathers:
    /// transfers plus waiting for slower tp peers), the world-group waits (sending the batch,
    /// and waiting for the logits: the later stages' compute and the transfers), and the rest
    /// (its own compute).
    public var timeSplit: (forward: Double, tensorWaits: Double, pipelineWaits: Double, compute: Double) {
        let tensor = job.tensorGroup.waitingSeconds, pipeline = job.worldGroup.waitingSeconds
        return (forwardSeconds, tensor, pipeline, forwardSeconds - tensor - pipeline)
    }

    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }

    private func sendCommand(_ command: MPICommand, payloadBytes: Int) throws {
        let header: [Int64] = [command.rawValue, Int64(payloadBytes), Int64(shard.blockSize), Int64(shard.blockCount)]
        try header.withUnsafeBytes { bytes in
            for rank in 1..<job.world.size { try job.worldGroup.send(bytes, to: rank, tag: MPITag.command) }
        }
    }

    /// Ends the job: after a clean run, tells every worker to stop and finalises MPI; after a
    /// failure (or when `failure` is set), aborts every rank with `MPI_Abort`. Call once, last.
    public func finish(failure: Bool = false) {
        guard !finished else { return }
        finished = true
        if failed || failure { job.world.abort(code: 1) }
        do {
            try sendCommand(.shutdown, payloadBytes: 0)
            try job.worldGroup.flushSends()
        } catch {
            job.world.abort(code: 1)
        }
        job.world.finalize()
    }
}

/// A non-controller rank: receives batch descriptions from rank 0 and runs its shard until
/// told to stop.
public final class MPIStageWorker: @unchecked Sendable {
    /// The job this worker belongs to.
    public let job: MPIJob
    let shard: MPIShard
    /// Test hook: the world rank that stops answering once its first batch comes (it sleeps
    /// forever), from the environment variable `ENERGON_MPI_STALL_RANK`.
    let stallRank: Int?
    /// Test hook: the world rank whose process dies (SIGKILL) once its first batch comes, from
    /// the environment variable `ENERGON_MPI_KILL_RANK`.
    let killRank: Int?

    /// Builds this rank's shard.
    public init(job: MPIJob, configuration: DecoderConfiguration, weights: WeightSource, threadsPerRank: Int,
                isa: ISA = .best, blockSize: Int, blockCount: Int, kvCacheType: DType = .f16) throws {
        self.job = job
        shard = try job.makeShard(configuration: configuration, weights: weights, threads: threadsPerRank, isa: isa,
                                  blockSize: blockSize, blockCount: blockCount, kvCacheType: kvCacheType)
        stallRank = getenv("ENERGON_MPI_STALL_RANK").flatMap { Int(String(cString: $0)) }
        killRank = getenv("ENERGON_MPI_KILL_RANK").flatMap { Int(String(cString: $0)) }
    }

    /// Forward passes served so far.
    public private(set) var forwardCount = 0
    /// Seconds spent running them (from the batch description's arrival to sending the result).
    public private(set) var forwardSeconds = 0.0

    /// Where this rank's forward time went: its compute, its tensor-group waits, and the rest
    /// (waiting for the previous stage's activations, handing results on).
    public var timeSplit: (forward: Double, tensorWaits: Double, pipelineWaits: Double, compute: Double) {
        let tensor = job.tensorGroup.waitingSeconds
        let compute = shard.computeSeconds - tensor
        return (forwardSeconds, tensor, max(0, forwardSeconds - shard.computeSeconds), compute)
    }

    /// Serves forward passes until the controller's shutdown. Waiting for the next command has
    /// no timeout (a chat may idle for hours; if rank 0 dies, `mpirun` ends the job); every wait
    /// inside a forward pass has one.
    public func run() throws {
        var header = [Int64](repeating: 0, count: 4)
        var payload: [Int32] = []
        let controller = 0
        while true {
            let headerBytes = try header.withUnsafeMutableBytes {
                try job.worldGroup.receive(into: $0, from: controller, tag: MPITag.command, timeout: .infinity)
            }
            guard headerBytes == 32, let command = MPICommand(rawValue: header[0]) else {
                throw CommunicationError.invalidArgument("rank 0 sent a malformed command (\(headerBytes) bytes, kind \(header[0]))")
            }
            if command == .shutdown {
                try job.worldGroup.flushSends()
                return
            }
            guard header[2] == shard.blockSize, header[3] == shard.blockCount else {
                throw CommunicationError.invalidArgument(
                    "rank 0 uses \(header[3]) KV blocks of \(header[2]) positions, rank \(job.world.rank) "
                        + "\(shard.blockCount) of \(shard.blockSize): every rank must get the same arguments")
            }
            if stallRank == job.world.rank {
                while true { sleep(3600) }  // the test hook: a rank that stops answering
            }
            if killRank == job.world.rank { raise(SIGKILL) }  // the test hook: a rank whose process dies
            let count = Int(header[1]) / 4
            if payload.count < count { payload = [Int32](repeating: 0, count: count) }
            let bytes = try payload.withUnsafeMutableBytes {
                try job.worldGroup.receive(into: $0, from: controller, tag: MPITag.batch)
            }
            let batch = try MPIBatchCodec.decode(payload[0..<(bytes / 4)])
            let start = MPIRunner.now()
            defer {
                forwardCount += 1
                forwardSeconds += MPIRunner.now() - start
            }
            let logits = try shard.run(batch, job: job)
            if shard.parallel.isLastStage, job.tensorRank == 0, let logits, job.world.rank != controller {
                let count = batch.logitRows.count * shard.model.configuration.vocabularySize
                try job.worldGroup.send(UnsafeRawBufferPointer(start: logits, count: count * 4), to: controller,
                                        tag: MPITag.logits)
            }
        }
    }
}

/// The wire form of a `ForwardBatch`: Int32s `[tokens, sequences, logit rows, tokens…,
/// positions…, (offset, count, start, table length, table…) per sequence, logit rows…]`.
enum MPIBatchCodec {
    static func encode(_ batch: ForwardBatch, into words: inout [Int32]) {
        words.removeAll(keepingCapacity: true)
        words.append(Int32(batch.totalTokens))
        words.append(Int32(batch.sequences.count))
        words.append(Int32(batch.logitRows.count))
        words.append(contentsOf: batch.tokens)
        words.append(contentsOf: batch.positions)
        for sequence in batch.sequences {
            words.append(contentsOf: [Int32(sequence.offset), Int32(sequence.count), Int32(sequence.startPosition),
                                      Int32(sequence.blockTable.count)])
            words.append(contentsOf: sequence.blockTable)
        }
        words.append(contentsOf: batch.logitRows.map { Int32($0) })
    }

    static func decode(_ words: ArraySlice<Int32>) throws -> ForwardBatch {
        var cursor = words.startIndex
        func take(_ n: Int) throws -> ArraySlice<Int32> {
            guard n >= 0, words.endIndex - cursor >= n else {
                throw CommunicationError.invalidArgument("a batch description from rank 0 is truncated (\(words.count) words)")
            }
            defer { cursor += n }
            return words[cursor..<(cursor + n)]
        }
        let counts = try take(3)
        let tokenCount = Int(counts[counts.startIndex]), sequenceCount = Int(counts[counts.startIndex + 1])
        let rowCount = Int(counts[counts.startIndex + 2])
        var batch = ForwardBatch(sequences: [])
        batch.tokens = Array(try take(tokenCount))
        batch.positions = Array(try take(tokenCount))
        guard sequenceCount >= 0 else { throw CommunicationError.invalidArgument("a batch description has \(sequenceCount) sequences") }
        for _ in 0..<sequenceCount {
            let fields = try take(4)
            let first = fields.startIndex
            let table = Array(try take(Int(fields[first + 3])))
            batch.sequences.append(BatchSequence(offset: Int(fields[first]), count: Int(fields[first + 1]),
                                                 startPosition: Int(fields[first + 2]), blockTable: table))
        }
        batch.logitRows = try take(rowCount).map { Int($0) }
        guard cursor == words.endIndex else {
            throw CommunicationError.invalidArgument("a batch description from rank 0 has \(words.endIndex - cursor) extra words")
        }
        return batch
    }
}
#endif
