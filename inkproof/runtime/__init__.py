"""Torch-free inference: onnxruntime sessions behind :class:`~inkproof.runtime.engine.Engine`."""
