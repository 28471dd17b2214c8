"""Narration: the story read aloud by an offline neural voice (Piper ONNX voices, espeak-ng phonemes)."""
