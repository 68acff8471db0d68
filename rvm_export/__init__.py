"""Export Robust Video Matting to every runtime it ships on, and verify each artifact against PyTorch.

Layers, bottom up (each imports only those below it):

- ``contract``: tensor names, the metadata every artifact carries, atomic writes, the error root, extras
- ``targets``: the registry, one :class:`~rvm_export.targets.TargetSpec` per target
- ``export``: one module per target, writing an artifact from the canonical ``model.MattingNetwork``
- ``runtimes``: one runner per runtime (open, step a frame with its own state, close) and the one rollout
- ``verify`` and ``inference``: both stand on ``runtimes``; neither imports the other
- ``release``: ``make export-all`` (export then verify every job, write the manifest)
"""
