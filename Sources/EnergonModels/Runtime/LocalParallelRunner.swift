import EnergonCheckpoint
import EnergonCore
import EnergonDistributed
import Foundation

/// A model split over tp × pp worker ranks that are threads of this process: each rank builds
/// only its shard (its heads, MLP columns and vocabulary rows, for its stage's layers), owns its
/// compute threads, KV cache and buffers, and talks to its tensor-parallel peers through a
/// `LocalProcessGroup`. Activations pass from stage to stage packed (ragged, no padding).
///
/// One batch is in flight at a time here (`forward` returns when the last stage has its
/// logits); the engine's pipeline keeps several batches in flight over the same workers.
public final class LocalParallelRunner: ModelRunner, @unchecked Sendable {
    public let configuration: DecoderConfiguration
    public let blocks: BlockAllocator
    public let grid: ParallelGrid
    /// Longest time `forward` waits for a rank before failing.
    public let timeout: Double
    let workers: [[RankWorker]]   // [stage][tensor rank]

    /// Builds every rank's shard.
    /// - Parameters:
    ///   - configuration: the model's hyperparameters.
    ///   - grid: the validated tp × pp layout.
    ///   - threadsPerRank: compute threads of each rank.
    ///   - weights: a fresh `WeightSource` for one rank (each rank keeps its own accounting).
    ///   - blockSize, blockCount: KV-cache geometry, the same on every rank.
    ///   - kvCacheType: element type of every rank's KV cache, `.f16` (default) or `.f32`.
    public init(configuration: DecoderConfiguration, grid: ParallelGrid, threadsPerRank: Int,
                weights: () throws -> WeightSource, blockSize: Int, blockCount: Int, timeout: Double = 120,
                kvCacheType: DType = .f16) throws {
        self.configuration = configuration
        self.grid = grid
        self.timeout = timeout
        blocks = BlockAllocator(blockSize: blockSize, blockCount: blockCount)
        var workers: [[RankWorker]] = []
        for (stage, layers) in grid.stageLayers.enumerated() {
            let communicator = LocalCommunicator(size: grid.tensorParallel, timeout: timeout)
            var stageWorkers: [RankWorker] = []
            for rank in 0..<grid.tensorParallel {
                let parallel = ParallelContext(tensorGroup: communicator.group(rank: rank), pipelineStage: stage,
                                               pipelineStages: grid.pipelineStages)
                let model = try ModelRegistry.build(configuration: configuration, weights: weights(),
                                                    parallel: parallel, layers: layers)
                stageWorkers.append(RankWorker(model: model, parallel: parallel, communicator: communicator,
                                               threads: threadsPerRank, blockSize: blockSize, blockCount: blockCount,
                                               kvCacheType: kvCacheType))
            }
            workers.append(stageWorkers)
        }
        self.workers = workers
    }

    public func forward(_ batch: ForwardBatch) throws -> UnsafeMutablePointer<Float>? {
        var logits: UnsafeMutablePointer<Float>?
        for stage in workers.indices {
            let previous = stage > 0 ? workers[stage - 1] : nil
            let outputs = try runAll(workers[stage]) { rank, worker in
                let incoming = previous.map {
                    UnsafePointer($0[rank].buffers.buffer(.hidden, count: batch.totalTokens * self.configuration.hiddenSize))
                }
                return try DecoderRuntime.forward(worker.model, batch: batch, cache: worker.cache, buffers: worker.buffers,
                                                  context: worker.context, parallel: worker.parallel, incoming: incoming)
            }
            logits = outputs[0]
        }
        return logits
    }

    /// Runs `body` on every rank of a stage (each on its own thread) and waits for all.
    private func runAll(_ ranks: [RankWorker],
                        _ body: @escaping @Sendable (Int, RankWorker) throws -> UnsafeMutablePointer<Float>?) throws
        -> [UnsafeMutablePointer<Float>?] {
        for (rank, worker) in ranks.enumerated() {
            worker.submit { try body(rank, worker) }
        }
        var results: [UnsafeMutablePointer<Float>?] = []
        var firstError: (any Error)?
        for worker in ranks {
            do {
                results.append(try worker.wait(timeout: timeout))
            } catch {
                if firstError == nil { firstError = error }
                results.append(nil)
            }
        }
        if let firstError { throw firstError }
        return results
    }
}

/// One rank: its shard, cache, buffers, compute threads, and the dedicated thread that runs its jobs.
final class RankWorker: @unchecked Sendable {
    let model: any DecoderModel
    let parallel: ParallelContext
    let communicator: LocalCommunicator
    let context: ComputeContext
    let cache: KVCache
    let buffers = ActivationBuffers()
    private let mailbox = RankMailbox()

    init(model: any DecoderModel, parallel: ParallelContext, communicator: LocalCommunicator, threads: Int,
         blockSize: Int, blockCount: Int, kvCacheType: DType) {
        self.model = model
        self.parallel = parallel
        self.communicator = communicator
        context = ComputeContext(threads: threads)
        cache = KVCache(layers: model.layerRange.count, blockSize: blockSize, kvDimension: model.kvDimensionPerRank,
                        blockCount: blockCount, elementType: kvCacheType)
        let mailbox = self.mailbox
        let thread = Thread { mailbox.loop() }  // the thread holds the mailbox, never the worker
        thread.name = "energon-rank-\(parallel.pipelineStage)-\(parallel.tensorRank)"
        thread.start()
    }

    deinit { mailbox.stop() }

    func submit(_ work: @escaping () throws -> UnsafeMutablePointer<Float>?) {
        let communicator = self.communicator, rank = parallel.tensorRank
        mailbox.submit {
            do {
                return try work()
            } catch {
                communicator.fail(rank: rank, reason: "\(error)")
                throw error
            }
        }
    }

    func wait(timeout: Double) throws -> UnsafeMutablePointer<Float>? {
        guard let result = mailbox.wait(timeout: timeout) else {
            communicator.fail(rank: parallel.tensorRank, reason: "no answer within \(timeout) s")
            throw CommunicationError.timedOut(operation: "forward", rank: parallel.tensorRank, seconds: timeout)
        }
        return try result.get()
    }
}

/// The hand-off between the controller and a rank's thread: one job at a time.
private final class RankMailbox: @unchecked Sendable {
    private let start = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)
    private var job: (() throws -> UnsafeMutablePointer<Float>?)?
    private var result: Result<UnsafeMutablePointer<Float>?, any Error> = .success(nil)
    private var stopping = false

    func submit(_ work: @escaping () throws -> UnsafeMutablePointer<Float>?) {
        job = work
        start.signal()  // publishes `job` to the rank thread
    }

    func wait(timeout: Double) -> Result<UnsafeMutablePointer<Float>?, any Error>? {
        done.wait(timeout: .now() + timeout) == .success ? result : nil
    }

    func stop() {
        stopping = true
        start.signal()
    }

    func loop() {
        while true {
            start.wait()
            if stopping { return }
            result = Result { try job?() }
            job = nil
            done.signal()
        }
    }
}
