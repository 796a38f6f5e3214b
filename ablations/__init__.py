"""Ablation suite: tasks, Lightning training, grid runner, analysis and the `ablate` CLI."""
