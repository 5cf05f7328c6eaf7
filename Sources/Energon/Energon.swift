// `import Energon`: the whole library in one import, for apps that embed the engine.
// Each part stays usable on its own (EnergonCore, EnergonCheckpoint, EnergonTokenizers,
// EnergonDistributed, EnergonModels, EnergonEngine).
@_exported import EnergonCheckpoint
@_exported import EnergonCore
@_exported import EnergonDistributed
@_exported import EnergonEngine
@_exported import EnergonModels
@_exported import EnergonTokenizers
