"""Offline scripts that build the shipped ONNX models and verify them (`just models`, in throwaway venvs)."""
