"""The ground every other part stands on: errors, registries, constants,
activations and deferred imports. Imports nothing else of pcgraph."""
