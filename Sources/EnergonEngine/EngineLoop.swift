import EnergonCore
import EnergonModels
import Foundation

/// One lane of the controller: the running sequences its batches carry, and the batch it has
/// in flight (at most one). With a blocking runner there is one lane.
final class Lane {
    /// The runner's in-flight slot this lane uses.
    let slot: Int
    var running: [ServedSequence] = []
    /// The entries of the batch in flight, if any.
    var inFlight: [BatchEntry]?
    /// The batch's result when it is already known (blocking runners, or a failed submit).
    var result: Result<UnsafeMutablePointer<Float>?, any Error>?

    init(slot: Int) { self.slot = slot }
}

/// One sequence's part of an iteration's batch.
struct BatchEntry {
    let sequence: ServedSequence
    let tokens: [Int32]
    /// Whether the last token's logits are sampled (a decode, or the last chunk of a prompt).
    let samples: Bool
    /// Padding tokens appended (only with `paddedBatches`).
    var padding = 0
}

extension Engine {
    // MARK: - The scheduling loop (engine thread only)

    func loop() {
        let lanes = (0..<laneCount).map(Lane.init)
        var order: [Lane] = []  // lanes with a batch in flight, oldest first
        let pipelined = laneCount > 1 ? runner as? any PipelinedModelRunner : nil
        while true {
            if stopped.load(ordering: .acquiring) {
                // Let in-flight batches come back first, so no rank writes into freed blocks.
                for lane in order { _ = lane.result ?? Result { try pipelined?.wait(slot: lane.slot) } }
                let waiting = state.withLock { state in defer { state.waiting.removeAll() }; return state.waiting }
                for sequence in lanes.flatMap(\.running) + waiting { finish(sequence, error: EngineError.shutDown) }
                return
            }
            let cancelled = state.withLock { state in defer { state.cancelled.removeAll() }; return state.cancelled }
            if !cancelled.isEmpty { cancel(cancelled, lanes: lanes) }
            admit(lanes)
            for lane in lanes where lane.inFlight == nil && !lane.running.isEmpty {
                var entries = schedule(lane)
                guard !entries.isEmpty else { continue }
                if configuration.paddedBatches { pad(&entries) }
                submit(entries, lane: lane, pipelined: pipelined)
                order.append(lane)
            }
            let runningCount = lanes.reduce(0) { $0 + $1.running.count }
            if order.isEmpty {
                if runningCount > 0 {
                    resolveStall(lanes)
                    continue
                }
                let idle = state.withLock { $0.waiting.isEmpty && $0.cancelled.isEmpty }
                if idle && draining.load(ordering: .acquiring) { return }
                wake.lock()
                if state.withLock({ $0.waiting.isEmpty && $0.cancelled.isEmpty }) && !stopped.load(ordering: .acquiring)
                    && !draining.load(ordering: .acquiring) {
                    _ = wake.wait(until: Date(timeIntervalSinceNow: 1))
                }
                wake.unlock()
                continue
            }
            complete(order.removeFirst(), pipelined: pipelined)
        }
    }

    /// Ends cancelled requests: waiting ones and running ones not in flight at once, in-flight
    /// ones when their batch comes back (their blocks may still be written until then).
    private func cancel(_ cancelled: Set<Int>, lanes: [Lane]) {
        for lane in lanes {
            lane.running.removeAll { sequence in
                guard cancelled.contains(sequence.id) else { return false }
                if sequence.inFlight {
                    sequence.cancelRequested = true
                    return false
                }
                finish(sequence, reason: .cancelled)
                return true
            }
        }
        let removed = state.withLock { state -> [ServedSequence] in
            let removed = state.waiting.filter { cancelled.contains($0.id) }
            state.waiting.removeAll { cancelled.contains($0.id) }
            return removed
        }
        for sequence in removed { finish(sequence, reason: .cancelled) }
    }

    /// Moves waiting requests (FIFO) into the least loaded lanes while there is room, giving
    /// each the cached blocks of its longest cached prompt prefix. A request is admitted only
    /// when the free blocks cover the rest of its prompt plus one block of growth per running
    /// sequence (unless nothing runs), so admissions do not starve running sequences into
    /// preemption, and a preempted sequence does not come straight back to be preempted again.
    private func admit(_ lanes: [Lane]) {
        var runningCount = lanes.reduce(0) { $0 + $1.running.count }
        var cachedTokens = 0
        let blocks = runner.blocks
        while runningCount < configuration.maxRunningSequences {
            guard let sequence = state.withLock({ $0.waiting.first }) else { break }
            var taken: [Int32] = [], positions = 0
            if sequence.table.isEmpty {
                (taken, positions) = blocks.takeCachedPrefix(of: sequence.tokens, limit: sequence.tokens.count - 1)
            }
            let needed = blocks.blocksNeeded(positions: sequence.tokens.count + 1) - max(taken.count, sequence.table.count)
            if runningCount > 0 && blocks.freeBlockCount < needed + runningCount {
                blocks.free(taken)
                break  // FIFO: later requests wait behind this one
            }
            state.withLock { _ = $0.waiting.removeFirst() }
            if !taken.isEmpty {
                sequence.table = taken
                sequence.processed = positions
                sequence.registeredBlocks = taken.count
                cachedTokens += positions
            }
            // invariant: laneCount ≥ 1
            let lane = lanes.min { $0.running.count < $1.running.count }!
            sequence.lane = lane.slot
            lane.running.append(sequence)
            runningCount += 1
            sequence.isRunning = true
            state.withLock { $0.running += 1 }
        }
        if cachedTokens > 0 { state.withLock { $0.statistics.prefixCachedTokens += cachedTokens } }
    }

    /// Picks a lane's work for this iteration: one decode token for every sequence past its
    /// prompt, then prompt chunks (oldest first), all under the token budget and the free KV
    /// blocks. When blocks run out for a decode, the lane's most recently admitted sequence is
    /// preempted: its blocks are freed and it waits to recompute.
    private func schedule(_ lane: Lane) -> [BatchEntry] {
        var budget = configuration.maxBatchTokens
        var entries: [BatchEntry] = []
        let blocks = runner.blocks
        // Decodes first: they keep every running sequence moving.
        var index = 0
        while index < lane.running.count {
            let sequence = lane.running[index]
            guard sequence.processed >= sequence.tokens.count - 1, budget > 0 else { index += 1; continue }
            do {
                try blocks.ensureCapacity(&sequence.table, positions: sequence.processed + 1)
                entries.append(BatchEntry(sequence: sequence, tokens: [sequence.tokens[sequence.processed]], samples: true))
                budget -= 1
                index += 1
            } catch {
                // Out of blocks: preempt the newest other sequence (or this one) and retry.
                let victim = lane.running.removeLast()
                entries.removeAll { $0.sequence === victim }
                preempt(victim)
                if victim === sequence { continue }
            }
        }
        // Prompt chunks (chunked prefill), oldest first.
        for sequence in lane.running where sequence.processed < sequence.tokens.count - 1 {
            guard budget > 0 else { break }
            let remaining = sequence.tokens.count - sequence.processed
            let chunk = min(remaining, budget)
            do {
                try blocks.ensureCapacity(&sequence.table, positions: sequence.processed + chunk)
            } catch {
                break  // wait for blocks to be freed by finishing sequences
            }
            let tokens = Array(sequence.tokens[sequence.processed..<(sequence.processed + chunk)])
            entries.append(BatchEntry(sequence: sequence, tokens: tokens, samples: chunk == remaining))
            budget -= chunk
        }
        return entries
    }

    /// Pads every entry to the longest one (`paddedBatches`): padding tokens sit after the
    /// entry's real tokens, so causal attention keeps them out of real rows, and their cache
    /// slots are overwritten when real tokens reach those positions.
    private func pad(_ entries: inout [BatchEntry]) {
        let longest = entries.map(\.tokens.count).max() ?? 0
        for index in entries.indices {
            let entry = entries[index]
            let sequence = entry.sequence
            let padding = min(longest - entry.tokens.count, contextLimit - sequence.processed - entry.tokens.count)
            guard padding > 0,
                  (try? runner.blocks.ensureCapacity(&sequence.table, positions: sequence.processed + entry.tokens.count + padding)) != nil
            else { continue }
            entries[index].padding = padding
        }
    }

    private func submit(_ entries: [BatchEntry], lane: Lane, pipelined: (any PipelinedModelRunner)?) {
        var batch = ForwardBatch(sequences: entries.map { entry in
            let padding = Array(repeating: entry.tokens[entry.tokens.count - 1], count: entry.padding)
            return (entry.tokens + padding, entry.sequence.processed, entry.sequence.table)
        })
        batch.logitRows = []
        for (entry, packed) in zip(entries, batch.sequences) where entry.samples {
            batch.logitRows.append(packed.offset + entry.tokens.count - 1)
        }
        for entry in entries { entry.sequence.inFlight = true }
        state.withLock { state in
            state.statistics.batches += 1
            state.statistics.computedTokens += entries.reduce(0) { $0 + $1.tokens.count }
            state.statistics.paddingTokens += entries.reduce(0) { $0 + $1.padding }
        }
        lane.inFlight = entries
        if let pipelined {
            do { try pipelined.submit(batch, slot: lane.slot) } catch { lane.result = .failure(error) }
        } else {
            lane.result = Result { try runner.forward(batch) }
        }
    }

    /// Takes a lane's batch back: advances its sequences, registers their full blocks in the
    /// prefix cache, samples, streams, and ends sequences that finished or were cancelled.
    private func complete(_ lane: Lane, pipelined: (any PipelinedModelRunner)?) {
        guard let entries = lane.inFlight else { return }
        let result = lane.result ?? Result { try pipelined?.wait(slot: lane.slot) }
        lane.inFlight = nil
        lane.result = nil
        for entry in entries { entry.sequence.inFlight = false }
        let logits: UnsafeMutablePointer<Float>?
        switch result {
        case let .success(pointer): logits = pointer
        case let .failure(error):
            for entry in entries { finish(entry.sequence, error: EngineError.modelFailed("\(error)")) }
            lane.running.removeAll { sequence in entries.contains { $0.sequence === sequence } }
            return
        }
        let vocabulary = runner.configuration.vocabularySize
        var row = 0
        var finished: [ServedSequence] = []
        for entry in entries {
            let sequence = entry.sequence
            sequence.processed += entry.tokens.count
            sequence.registeredBlocks = runner.blocks.registerFullBlocks(
                table: sequence.table, tokens: sequence.tokens, computed: sequence.processed, from: sequence.registeredBlocks)
            if entry.samples, let logits {
                let start = DispatchTime.now().uptimeNanoseconds
                let (token, logprob) = sequence.sampler.sample(logits: logits + row * vocabulary, count: vocabulary)
                let nanoseconds = DispatchTime.now().uptimeNanoseconds - start
                row += 1
                // Counted before the stream can end, so a caller that saw it end sees the count.
                state.withLock { state in
                    state.statistics.generatedTokens += 1
                    state.statistics.samplingSeconds += Double(nanoseconds) * 1e-9
                }
                if let reason = sequence.accept(token, logprob: logprob, eos: tokenizer.eosTokenIDs, contextLimit: contextLimit) {
                    finish(sequence, reason: reason)  // frees the blocks before the stream ends
                    finished.append(sequence)
                    continue
                }
            }
            if sequence.cancelRequested {
                finish(sequence, reason: .cancelled)
                finished.append(sequence)
            }
        }
        lane.running.removeAll { sequence in finished.contains { $0 === sequence } }
    }

    /// Nothing could be scheduled and nothing is in flight: every lane is short of KV blocks.
    /// Frees the newest sequence's blocks for the others, or refuses a sequence that cannot fit
    /// even alone.
    private func resolveStall(_ lanes: [Lane]) {
        let candidates = lanes.compactMap { lane in lane.running.max { $0.id < $1.id }.map { (lane, $0) } }
        // invariant: called only with running sequences
        let (lane, newest) = candidates.max { $0.1.id < $1.1.id }!
        lane.running.removeAll { $0 === newest }
        if lanes.allSatisfy({ $0.running.isEmpty }) {
            finish(newest, error: EngineError.promptTooLong(tokens: newest.tokens.count, limit: contextLimit - 1))
        } else {
            preempt(newest)
        }
    }

    private func preempt(_ sequence: ServedSequence) {
        leaveRunning(sequence)
        runner.blocks.free(sequence.table)
        sequence.table.removeAll()
        sequence.registeredBlocks = 0
        sequence.processed = 0  // recompute prompt + generated tokens when it runs again
        state.withLock { state in
            state.waiting.insert(sequence, at: 0)
            state.statistics.preemptions += 1
        }
    }

    private func finish(_ sequence: ServedSequence, reason: FinishReason) {
        leaveRunning(sequence)
        runner.blocks.free(sequence.table)
        sequence.table.removeAll()
        sequence.close(reason)
    }

    private func finish(_ sequence: ServedSequence, error: any Error) {
        leaveRunning(sequence)
        runner.blocks.free(sequence.table)
        sequence.table.removeAll()
        sequence.continuation.finish(throwing: error)
    }

    /// Keeps `load.running` exact: updated before a stream ends.
    private func leaveRunning(_ sequence: ServedSequence) {
        guard sequence.isRunning else { return }
        sequence.isRunning = false
        state.withLock { $0.running -= 1 }
    }
}
