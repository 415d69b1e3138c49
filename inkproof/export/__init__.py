"""Export trained models: ONNX (with parity checks), int8 quantisation, TensorRT engines."""
