"""Tuning the storyteller: the team's comfort-scene corpus, a LoRA fine-tune of SmolLM2 on the CPU, and its
export to a GGUF adapter that llama.cpp applies to the packaged base model at load time."""
