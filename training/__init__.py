"""Offline tooling that produces shipped artefacts (the body-measurement calibration, the ONNX models)."""
