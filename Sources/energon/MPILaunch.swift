import ArgumentParser
import EnergonCheckpoint
import EnergonCore
import EnergonDistributed
import EnergonModels

#if canImport(Glibc)
import Glibc
#endif

extension ModelOptions {
    /// The runner for `--tp × --pp`: in-process (serial or thread ranks), or, in a binary built
    /// with the `MPI` trait and started by `mpirun`, spread over the job's processes. On every
    /// MPI rank but 0 this never returns: the rank serves forward passes until rank 0 ends the
    /// job, then exits (0 after a clean shutdown; on an error it prints it, naming the rank,
    /// and aborts the whole job).
    /// - Parameters:
    ///   - batchesInFlight: batches a pipeline holds at once (in process: default one per stage;
    ///     over MPI: default 1, blocking); an engine passes its lanes.
    ///   - cacheBlocks: KV-cache blocks (default: enough for `contextLength`).
    func makeParallelRunner(checkpoint: Checkpoint, contextLength: Int?, batchesInFlight: Int? = nil,
                            cacheBlocks: Int? = nil) throws -> any ModelRunner {
        try makeParallelRunner(configuration: checkpoint.configuration, weights: { checkpoint.weights() },
                               contextLength: contextLength, batchesInFlight: batchesInFlight, cacheBlocks: cacheBlocks)
    }

    /// `makeParallelRunner` for a model given by its configuration and weights (no tokenizer
    /// needed), with the KV-cache geometry of `RunnerFactory` (as `Checkpoint.makeRunner`).
    func makeParallelRunner(configuration: DecoderConfiguration, weights: @escaping () -> WeightSource,
                            contextLength: Int?, batchesInFlight: Int? = nil, cacheBlocks: Int? = nil) throws -> any ModelRunner {
        #if MPI
        if MPIWorld.isLaunchedByMPIRun {
            return try makeMPIRunner(configuration: configuration, weights: weights, contextLength: contextLength,
                                     batchesInFlight: batchesInFlight, cacheBlocks: cacheBlocks)
        }
        #endif
        return try RunnerFactory.make(configuration: configuration, weights: weights, tensorParallel: tp, pipelineStages: pp,
                                      layersPerStage: parsedStageLayers, threadsPerRank: threads,
                                      isa: isa.flatMap(ISA.init(name:)) ?? .best, contextLength: contextLength,
                                      kvCacheType: kvCacheType ?? .f16, batchesInFlight: batchesInFlight,
                                      cacheBlocks: cacheBlocks)
    }

    #if MPI
    private func makeMPIRunner(configuration: DecoderConfiguration, weights: () -> WeightSource,
                               contextLength: Int?, batchesInFlight: Int?, cacheBlocks: Int?) throws -> any ModelRunner {
        let isa = isa.flatMap(ISA.init(name:)) ?? .best
        // Computed alike on every rank from the same arguments (rank 0 checks it with each batch).
        let (blockSize, blockCount) = RunnerFactory.cacheGeometry(configuration: configuration, contextLength: contextLength,
                                                                  cacheBlocks: cacheBlocks)
        let job: MPIJob
        do {
            job = try MPIJob(configuration: configuration, tensorParallel: tp, pipelineStages: pp,
                             layersPerStage: parsedStageLayers,
                             weightBlocks: ParallelGrid.WeightBlocks(weights(), configuration: configuration),
                             timeout: rankTimeout)
        } catch let error as ParallelGridError {
            // Every rank got the same arguments; rank 0 reports, the others leave quietly.
            let world = try MPIWorld.shared()
            world.finalize()
            if world.rank != 0 { Glibc.exit(2) }
            throw error
        }
        if job.isController {
            let runner = try MPIRunner(job: job, configuration: configuration, weights: weights(),
                                       threadsPerRank: threads, isa: isa, blockSize: blockSize, blockCount: blockCount,
                                       kvCacheType: kvCacheType ?? .f16, batchesInFlight: batchesInFlight ?? 1)
            MPIExit.runner = runner
            atexit {  // when the command ends, shut the workers down
                if let runner = MPIExit.runner, getenv("ENERGON_MPI_STATS") != nil { MPIExit.printTimeSplit(runner) }
                MPIExit.runner?.finish()
            }
            return AbortingRunner(runner)
        }
        do {
            let worker = try MPIStageWorker(job: job, configuration: configuration, weights: weights(),
                                            threadsPerRank: threads, isa: isa, blockSize: blockSize,
                                            blockCount: blockCount, kvCacheType: kvCacheType ?? .f16)
            try worker.run()
            if getenv("ENERGON_MPI_STATS") != nil {
                let split = worker.timeSplit, count = Double(max(1, worker.forwardCount))
                printError(String(format: "mpi rank %d: %d forward passes, %.3f ms/pass: compute %.3f, tensor-group waits %.3f, "
                                  + "pipeline waits and transfers %.3f ms/pass", job.world.rank, worker.forwardCount,
                                  split.forward / count * 1e3, split.compute / count * 1e3, split.tensorWaits / count * 1e3,
                                  split.pipelineWaits / count * 1e3))
            }
        } catch {
            printError("error: rank \(job.world.rank) (stage \(job.stage), tensor rank \(job.tensorRank)): \(error)")
            job.world.abort(code: 1)
        }
        job.world.finalize()
        Glibc.exit(0)
    }
    #endif
}

#if MPI
/// Rank 0's runner as the commands see it: a forward pass that fails (a peer timed out or
/// died, a rank reported an error) prints the error, naming the rank, and ends the whole job
/// with `MPI_Abort`, so no rank is left waiting.
final class AbortingRunner: PipelinedModelRunner, @unchecked Sendable {
    let runner: MPIRunner
    init(_ runner: MPIRunner) { self.runner = runner }
    var configuration: DecoderConfiguration { runner.configuration }
    var blocks: BlockManager { runner.blocks }
    var maxBatchesInFlight: Int { runner.maxBatchesInFlight }
    func forward(_ batch: ForwardBatch) throws -> UnsafeMutablePointer<Float>? {
        try abortingOnError { try runner.forward(batch) }
    }
    func submit(_ batch: ForwardBatch, slot: Int) throws {
        try abortingOnError { try runner.submit(batch, slot: slot) }
    }
    func wait(slot: Int) throws -> UnsafeMutablePointer<Float>? {
        try abortingOnError { try runner.wait(slot: slot) }
    }
    private func abortingOnError<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            printError("error: rank 0 (stage 0, tensor rank 0): \(error)")
            runner.job.world.abort(code: 1)
        }
    }
}

/// The controller's runner, for the exit handler (C's `atexit` takes no context).
enum MPIExit {
    nonisolated(unsafe) static var runner: MPIRunner?

    /// With `ENERGON_MPI_STATS` set, rank 0 prints where its forward time went (stderr).
    static func printTimeSplit(_ runner: MPIRunner) {
        let split = runner.timeSplit, count = max(1, runner.forwardCount)
        func share(_ seconds: Double) -> String {
            String(format: "%.3f ms/pass (%.0f%%)", seconds / Double(count) * 1e3, seconds / max(split.forward, 1e-9) * 100)
        }
        printError("mpi rank 0: \(runner.forwardCount) forward passes, "
                   + String(format: "%.3f ms/pass", split.forward / Double(count) * 1e3)
                   + ": compute \(share(split.compute)), tensor-group waits \(share(split.tensorWaits)), "
                   + "pipeline waits \(share(split.pipelineWaits))")
    }
}
#endif
