import EnergonCheckpoint
import EnergonCore
import EnergonDistributed
import Foundation
import Synchronization

/// A model split over tp × pp worker ranks that are threads of this process: each rank builds
/// only its shard (its heads, MLP columns and vocabulary rows, for its stage's layers), owns its
/// compute threads, KV cache and buffers, and talks to its tensor-parallel peers through a
/// `LocalProcessGroup`. Activations pass from stage to stage packed (ragged, no padding).
///
/// The pipeline is non-blocking: up to `maxBatchesInFlight` batches (of disjoint sequences)
/// move through the stages at once. Each rank runs its jobs in submission order on its own
/// thread; stage s+1 starts a batch as soon as stage s hands it on, while stage s already works
/// on the next one. Every in-flight slot has its own activation buffers on every rank, so a
/// stage never overwrites activations the next stage has not read yet.
public final class LocalParallelRunner: PipelinedModelRunner, @unchecked Sendable {
    public let configuration: DecoderConfiguration
    public let blocks: BlockManager
    public let grid: ParallelGrid
    /// Longest time a rank waits for the previous stage, and `wait` for the last, before failing.
    public let timeout: Double
    public let maxBatchesInFlight: Int
    let workers: [[RankWorker]]   // [stage][tensor rank]
    private let failure = Mutex<String?>(nil)

    /// Builds every rank's shard.
    /// - Parameters:
    ///   - configuration: the model's hyperparameters.
    ///   - grid: the validated tp × pp layout.
    ///   - threadsPerRank: compute threads of each rank.
    ///   - weights: a fresh `WeightSource` for one rank (each rank keeps its own accounting).
    ///   - blockSize, blockCount: KV-cache geometry, the same on every rank.
    ///   - kvCacheType: element type of every rank's KV cache, `.f16` (default) or `.f32`.
    ///   - batchesInFlight: batches the pipeline holds at once (default: one per stage).
    ///   - isa: kernel level of every rank.
    public init(configuration: DecoderConfiguration, grid: ParallelGrid, threadsPerRank: Int,
                weights: () throws -> WeightSource, blockSize: Int, blockCount: Int, timeout: Double = 120,
                kvCacheType: DType = .f16, batchesInFlight: Int? = nil, isa: ISA = .best) throws {
        self.configuration = configuration
        self.grid = grid
        self.timeout = timeout
        maxBatchesInFlight = max(1, batchesInFlight ?? grid.pipelineStages)
        blocks = BlockManager(blockSize: blockSize, blockCount: blockCount)
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
                                               kvCacheType: kvCacheType, slots: maxBatchesInFlight, isa: isa))
            }
            workers.append(stageWorkers)
        }
        self.workers = workers
    }

    /// Runs one batch through every stage and returns its logits (slot 0; nothing else may be in flight).
    public func forward(_ batch: ForwardBatch) throws -> UnsafeMutablePointer<Float>? {
        try submit(batch, slot: 0)
        return try wait(slot: 0)
    }

    public func submit(_ batch: ForwardBatch, slot: Int) throws {
        precondition(slot >= 0 && slot < maxBatchesInFlight, "slot \(slot) out of 0..<\(maxBatchesInFlight)")  // invariant: the controller's slots
        if let reason = failure.withLock({ $0 }) { throw ParallelRunnerError.failed(reason) }
        let hiddenSize = configuration.hiddenSize
        for stage in workers.indices {
            for (rank, worker) in workers[stage].enumerated() {
                let previous = stage > 0 ? workers[stage - 1][rank] : nil
                worker.enqueue { [timeout] in
                    worker.jobStarted()
                    let buffers = worker.buffers[slot]
                    var incoming: UnsafePointer<Float>?
                    if let previous {
                        // Wait for the previous stage to hand this batch on (or to fail).
                        guard let handoff = previous.handoffs[slot].take(timeout: timeout) else {
                            worker.finish(slot: slot, result: .failure(CommunicationError.timedOut(
                                operation: "pipeline stage \(stage - 1) → \(stage)", rank: rank, seconds: timeout)))
                            return
                        }
                        guard case let .success(pointer) = handoff else {
                            worker.finish(slot: slot, result: handoff)
                            return
                        }
                        incoming = pointer.map { UnsafePointer($0) }
                        worker.inputArrived()
                    }
                    let result = Result { () throws -> UnsafeMutablePointer<Float>? in
                        let logits = try DecoderRuntime.forward(worker.model, batch: batch, cache: worker.cache, buffers: buffers,
                                                                context: worker.context, parallel: worker.parallel,
                                                                incoming: incoming)
                        // Hand on the activations (middle stages) or the logits (last stage).
                        return worker.parallel.isLastStage ? logits
                            : buffers.buffer(.hidden, count: batch.totalTokens * hiddenSize)
                    }
                    if case let .failure(error) = result {
                        worker.communicator.fail(rank: rank, reason: "stage \(stage): \(error)")
                    }
                    worker.finish(slot: slot, result: result)
                }
            }
        }
    }

    /// Where every rank has spent its time since the runner was made, stage by stage: the
    /// measure of how busy a pipeline keeps its stages (`energon bench-engine` prints it).
    /// Take two readings and subtract them (`StageActivity.since`) to time one run.
    public func stageActivity() -> [StageActivity] {
        workers.flatMap { $0.map { $0.activity() } }
    }

    public func wait(slot: Int) throws -> UnsafeMutablePointer<Float>? {
        let last = workers.count - 1
        var logits: UnsafeMutablePointer<Float>?
        var firstError: (any Error)?
        for (rank, worker) in workers[last].enumerated() {
            guard let result = worker.handoffs[slot].take(timeout: timeout) else {
                let error = CommunicationError.timedOut(operation: "forward (stage \(last))", rank: rank, seconds: timeout)
                worker.communicator.fail(rank: rank, reason: "no answer within \(timeout) s")
                failure.withLock { $0 = $0 ?? "\(error)" }
                throw error
            }
            switch result {
            case let .success(pointer): if rank == 0 { logits = pointer }
            case let .failure(error): if firstError == nil { firstError = error }
            }
        }
        if let firstError {
            failure.withLock { $0 = $0 ?? "\(firstError)" }
            throw firstError
        }
        return logits
    }
}

/// Where one rank of a `LocalParallelRunner` spent its time: running its layers, waiting inside
/// a job for the previous stage to hand the batch on, or without a job (the controller had not
/// submitted the next batch yet).
public struct StageActivity: Sendable, Equatable {
    /// Pipeline stage and tensor-parallel rank.
    public var stage: Int, tensorRank: Int
    /// Jobs run (one per submitted batch).
    public var jobs: Int
    /// Seconds computing (its share of the layers, and the hand-off of the result).
    public var computeSeconds: Double
    /// Seconds inside a job waiting for the previous stage's activations.
    public var waitingSeconds: Double
    /// Seconds with no job queued.
    public var idleSeconds: Double

    /// The activity between an earlier reading `start` (of the same rank) and this one.
    public func since(_ start: StageActivity) -> StageActivity {
        StageActivity(stage: stage, tensorRank: tensorRank, jobs: jobs - start.jobs,
                      computeSeconds: computeSeconds - start.computeSeconds,
                      waitingSeconds: waitingSeconds - start.waitingSeconds, idleSeconds: idleSeconds - start.idleSeconds)
    }
}

/// Why a parallel runner refuses work.
public enum ParallelRunnerError: Error, CustomStringConvertible {
    /// A rank failed earlier; the runner cannot be used any more.
    case failed(String)

    public var description: String {
        switch self {
        case let .failed(reason): "the parallel runner is unusable after an earlier failure: \(reason)"
        }
    }
}

/// One rank: its shard, cache, per-slot buffers, compute threads, and the dedicated thread that
/// runs its jobs in order.
final class RankWorker: @unchecked Sendable {
    let model: any DecoderModel
    let parallel: ParallelContext
    let communicator: LocalCommunicator
    let context: ComputeContext
    let cache: KVCache
    /// Activation buffers of each in-flight slot.
    let buffers: [ActivationBuffers]
    /// What this rank hands on for each slot: its activations (or logits on the last stage).
    let handoffs: [Handoff]
    private let queue = JobQueue()

    init(model: any DecoderModel, parallel: ParallelContext, communicator: LocalCommunicator, threads: Int,
         blockSize: Int, blockCount: Int, kvCacheType: DType, slots: Int, isa: ISA) {
        self.model = model
        self.parallel = parallel
        self.communicator = communicator
        context = ComputeContext(threads: threads, isa: isa)
        cache = KVCache(layers: model.layerRange.count, blockSize: blockSize, kvDimension: model.kvDimensionPerRank,
                        blockCount: blockCount, elementType: kvCacheType)
        buffers = (0..<slots).map { _ in ActivationBuffers() }
        handoffs = (0..<slots).map { _ in Handoff() }
        let queue = self.queue
        let thread = Thread { queue.loop() }  // the thread holds the queue, never the worker
        thread.name = "energon-rank-\(parallel.pipelineStage)-\(parallel.tensorRank)"
        thread.start()
    }

    private let computeNanoseconds = Atomic<UInt64>(0)
    private let waitingNanoseconds = Atomic<UInt64>(0)
    private let jobs = Atomic<Int>(0)

    deinit { queue.stop() }

    /// When the current job started and when its input arrived (`DispatchTime` nanoseconds;
    /// touched only on this rank's thread).
    private var jobStart: UInt64 = 0, jobInput: UInt64 = 0

    /// Marks the start of a job (on this rank's thread).
    func jobStarted() {
        jobStart = DispatchTime.now().uptimeNanoseconds
        jobInput = jobStart
    }

    /// Marks the arrival of the previous stage's activations for the current job.
    func inputArrived() { jobInput = DispatchTime.now().uptimeNanoseconds }

    /// This rank's totals so far.
    func activity() -> StageActivity {
        StageActivity(stage: parallel.pipelineStage, tensorRank: parallel.tensorRank, jobs: jobs.load(ordering: .relaxed),
                      computeSeconds: Double(computeNanoseconds.load(ordering: .relaxed)) * 1e-9,
                      waitingSeconds: Double(waitingNanoseconds.load(ordering: .relaxed)) * 1e-9,
                      idleSeconds: Double(queue.idleNanoseconds.load(ordering: .relaxed)) * 1e-9)
    }

    /// Runs `job` on this rank's thread after the jobs already queued.
    func enqueue(_ job: @escaping @Sendable () -> Void) { queue.push(job) }

    /// Publishes this rank's result for `slot` to whoever waits for it (the next stage or the controller).
    func finish(slot: Int, result: Result<UnsafeMutablePointer<Float>?, any Error>) {
        // Accounted before the hand-off, so whoever it wakes sees this job counted.
        let end = DispatchTime.now().uptimeNanoseconds
        waitingNanoseconds.add(jobInput - jobStart, ordering: .relaxed)
        computeNanoseconds.add(end - jobInput, ordering: .relaxed)
        jobs.add(1, ordering: .relaxed)
        handoffs[slot].put(result)
    }
}

/// A one-value hand-off between a rank and its consumer (the next stage's rank, or the controller).
final class Handoff: @unchecked Sendable {
    private let ready = DispatchSemaphore(value: 0)
    private var value: Result<UnsafeMutablePointer<Float>?, any Error> = .success(nil)

    func put(_ result: Result<UnsafeMutablePointer<Float>?, any Error>) {
        value = result
        ready.signal()  // publishes `value` to the consumer
    }

    /// The published value, or `nil` after `timeout` seconds.
    func take(timeout: Double) -> Result<UnsafeMutablePointer<Float>?, any Error>? {
        ready.wait(timeout: .now() + timeout) == .success ? value : nil
    }
}

/// First-in first-out jobs run by one thread.
private final class JobQueue: @unchecked Sendable {
    private let available = DispatchSemaphore(value: 0)
    private let jobs = Mutex<[@Sendable () -> Void]>([])
    private let stopping = Atomic<Bool>(false)

    func push(_ job: @escaping @Sendable () -> Void) {
        jobs.withLock { $0.append(job) }
        available.signal()
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        available.signal()
    }

    /// Time the thread spent with no job to run.
    let idleNanoseconds = Atomic<UInt64>(0)

    func loop() {
        while true {
            let start = DispatchTime.now().uptimeNanoseconds
            available.wait()
            idleNanoseconds.add(DispatchTime.now().uptimeNanoseconds - start, ordering: .relaxed)
            if stopping.load(ordering: .acquiring) { return }
            let job = jobs.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            job?()
        }
    }
}
